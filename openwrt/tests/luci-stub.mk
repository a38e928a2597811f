# A stand-in for LuCI's luci.mk, included by luci-app-lispguard/Makefile
# as $(TOPDIR)/feeds/luci/luci.mk in tests/run.sh: prints what the app's
# Makefile gives luci.mk.

.PHONY: stub-luci
stub-luci:
	@echo 'LUCI_TITLE=$(LUCI_TITLE)'
	@echo 'LUCI_DEPENDS=$(LUCI_DEPENDS)'
	@echo 'LUCI_PKGARCH=$(LUCI_PKGARCH)'
	@echo 'PKG_VERSION=$(PKG_VERSION)'

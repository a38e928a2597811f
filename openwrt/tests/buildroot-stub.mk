# A stand-in for the OpenWrt build system, included as $(TOPDIR)/rules.mk
# by tests/run.sh: just enough for the feed Makefile to be read, and
# targets that print what it defines or run its Build/Prepare and install
# sections.

INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_CONF:=install -m0600
CP:=cp -fpR
ARCH?=x86_64
PKG_BUILD_DIR?=/nonexistent/build
PKG_INSTALL_DIR?=/nonexistent/install
CONFIG_PACKAGE_lispguard:=y
CONFIG_PACKAGE_lispguard-mapserver:=y

RUST_ARCH_DEPENDS:=@RUST
Build/Compile/Cargo=cargo:$(1)$(if $(2),[$(strip $(2))])
BuildPackage=STUB_PACKAGES+=$(1)

# echo commands for DEPENDS and conffiles of package $(1)
stub-package-info=$(eval DEPENDS:=)$(eval $(Package/$(1)))echo 'DEPENDS($(1))=$(strip $(DEPENDS))'; echo 'CONFFILES($(1))=$(strip $(Package/$(1)/conffiles))';

.PHONY: stub-info stub-prepare stub-install
stub-info:
	@echo 'PKG_NAME=$(PKG_NAME)'
	@echo 'PKG_VERSION=$(PKG_VERSION)'
	@echo 'PKG_LICENSE=$(PKG_LICENSE)'
	@echo 'PACKAGES=$(strip $(STUB_PACKAGES))'
	@echo 'COMPILE=$(strip $(Build/Compile))'
	@echo 'CARGO_RUSTFLAGS=$(strip $(CARGO_RUSTFLAGS))'
	@echo 'CARGO_PKG_VARS=$(strip $(CARGO_PKG_VARS))'
	@$(foreach p,$(STUB_PACKAGES),$(call stub-package-info,$(p)))

stub-prepare:
	$(Build/Prepare)

stub-install:
	$(call Package/$(PKG)/install,$(DEST))

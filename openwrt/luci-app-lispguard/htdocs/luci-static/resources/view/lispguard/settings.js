'use strict';
'require view';
'require form';
'require uci';

// /etc/config/lispguard, the options the agent reads (agent/src/config.rs):
// the same names; a placeholder is the agent's default for an unset option.
// `uci commit` restarts the agent (its init script's reload trigger), and
// a configuration with errors leaves the running agent alone: see
// `/etc/init.d/lispguard check` or the log.
return view.extend({
	render: function() {
		var m, s, o;

		m = new form.Map('lispguard', _('lispguard'),
			_('WireGuard peers on demand: this router asks a map-server for a peer\'s key and endpoint the first time traffic goes to it.'));

		s = m.section(form.NamedSection, 'main', 'agent', _('Agent'));

		o = s.option(form.Flag, 'enabled', _('Enabled'));
		o.rmempty = false;

		o = s.option(form.Value, 'token', _('Enrolment token'),
			_('A token from the map-server\'s operator (lispguard-mapserver token create). With no map-server below yet, the agent enrols when it starts and fills in this page itself.'));
		o.placeholder = 'lgt2.';
		o.password = true;

		o = s.option(form.Value, 'control_address', _('Control address'),
			_('This router\'s address inside the tunnel.'));
		o.datatype = 'ipaddr(1)';
		o.rmempty = false;

		o = s.option(form.DynamicList, 'overlay', _('Overlay prefixes'),
			_('Destinations resolved on demand through the map-server.'));
		o.datatype = 'cidr';
		o.rmempty = false;

		o = s.option(form.Value, 'interface', _('WireGuard interface'));
		o.placeholder = 'lg0';
		o.datatype = 'netdevname';

		o = s.option(form.ListValue, 'backend', _('WireGuard backend'));
		o.value('kernel', _('kernel (kmod-wireguard)'));
		o.value('userspace', _('userspace (wireguard-go)'));
		o.default = 'kernel';

		o = s.option(form.Value, 'listen_port', _('Listen port'));
		o.placeholder = '51820';
		o.datatype = 'port';

		o = s.option(form.Value, 'private_key_file', _('Private key file'),
			_('Created (mode 0600) if missing. The key itself never goes into this configuration.'));
		o.placeholder = '/etc/lispguard/agent.key';
		// The agent takes `private_key 'generate'` (the default file) or
		// private_key_file, not both.
		o.write = function(section_id, value) {
			uci.unset('lispguard', section_id, 'private_key');
			return form.Value.prototype.write.apply(this, [ section_id, value ]);
		};

		o = s.option(form.Value, 'register_interval', _('Register interval'),
			_('Seconds between Map-Registers.'));
		o.placeholder = '60';
		o.datatype = 'uinteger';

		o = s.option(form.Value, 'record_ttl', _('Record TTL'),
			_('Minutes others may cache this router\'s mapping.'));
		o.placeholder = '15';
		o.datatype = 'uinteger';

		o = s.option(form.Value, 'tun', _('TUN device'));
		o.placeholder = 'lgtun0';
		o.datatype = 'netdevname';

		o = s.option(form.ListValue, 'log_level', _('Log level'));
		[ 'error', 'warn', 'info', 'debug', 'trace' ].forEach(function(level) {
			o.value(level);
		});
		o.default = 'info';

		o = s.option(form.Value, 'status_socket', _('Status socket'));
		o.placeholder = '/run/lispguard.sock';

		o = s.option(form.Value, 'metrics', _('Prometheus metrics'),
			_('ADDRESS:PORT to serve /metrics on; off when empty. Anyone who reaches it reads them: keep it on loopback.'));
		o.datatype = 'ipaddrport(1)';
		o.placeholder = '127.0.0.1:9101';

		s = m.section(form.TypedSection, 'map_server', _('Map-servers'));
		s.addremove = true;
		s.anonymous = true;

		o = s.option(form.Value, 'address', _('Address'), _('Host name or address of its WireGuard endpoint.'));
		o.datatype = 'host';
		o.rmempty = false;

		o = s.option(form.Value, 'port', _('Port'));
		o.placeholder = '51820';
		o.datatype = 'port';

		o = s.option(form.Value, 'public_key', _('Public key'), _('Its WireGuard public key (base64).'));
		o.validate = function(section_id, value) {
			return /^[A-Za-z0-9+\/]{43}=$/.test(value) || _('a WireGuard key: 44 characters of base64');
		};
		o.rmempty = false;

		o = s.option(form.Value, 'control_address', _('Control address'), _('Its address inside the tunnel.'));
		o.datatype = 'ipaddr(1)';
		o.rmempty = false;

		o = s.option(form.Value, 'key', _('Site key'), _('This site\'s shared Map-Register key.'));
		o.password = true;
		o.rmempty = false;

		s = m.section(form.GridSection, 'eid', _('EID prefixes'),
			_('The prefixes this router registers: its LAN, or a /32 of its own. All in one instance.'));
		s.addremove = true;
		s.anonymous = true;

		o = s.option(form.Value, 'prefix', _('Prefix'));
		o.datatype = 'cidr';
		o.rmempty = false;

		o = s.option(form.Value, 'iid', _('Instance ID'));
		o.placeholder = '0';
		o.datatype = 'uinteger';

		return m.render();
	}
});

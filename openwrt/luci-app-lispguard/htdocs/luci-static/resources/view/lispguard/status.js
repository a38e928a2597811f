'use strict';
'require view';
'require poll';
'require rpc';

// The agent's `lispguard status --json`, through the rpcd plugin
// /usr/libexec/rpcd/lispguard; {error: ...} when the agent does not answer.
var callStatus = rpc.declare({
	object: 'lispguard',
	method: 'status'
});

// The status, or {error: ...} when the call itself fails (rpcd without the
// plugin until it is reloaded, access denied): the page says why.
function status() {
	return callStatus().catch(function(e) {
		return { error: e.message };
	});
}

function ago(seconds) {
	if (seconds < 120)
		return _('%ds ago').format(seconds);
	if (seconds < 7200)
		return _('%dm ago').format(Math.floor(seconds / 60));
	return _('%dh ago').format(Math.floor(seconds / 3600));
}

function registration(ms) {
	if (ms.registered_seconds_ago == null)
		return _('not registered (no Map-Notify yet)');
	var state = _('registered %s').format(ago(ms.registered_seconds_ago));
	return ms.waiting_for_map_notify ? state + ', ' + _('re-registering') : state;
}

function handshake(unixMs) {
	if (unixMs == null)
		return _('never');
	return ago(Math.max(0, Math.floor((Date.now() - unixMs) / 1000)));
}

function table(name, titles) {
	return E('table', { 'class': 'table ' + name }, [
		E('tr', { 'class': 'tr table-titles' }, titles.map(function(title) {
			return E('th', { 'class': 'th' }, title);
		}))
	]);
}

return view.extend({
	load: function() {
		return status();
	},

	update: function(nodes, status) {
		var error = nodes.querySelector('.lispguard-error'),
		    running = !status.error;

		error.textContent = running ? '' : _('The agent does not answer: %s').format(status.error);
		error.style.display = running ? 'none' : '';

		cbi_update_table(nodes.querySelector('.lispguard-map-servers'),
			(status.map_servers || []).map(function(ms) {
				return [ ms.control_address, registration(ms) ];
			}), E('em', running ? _('No map-server') : '-'));

		cbi_update_table(nodes.querySelector('.lispguard-peers'),
			(status.peers || []).map(function(peer) {
				return [
					peer.eid_prefixes.join(', '),
					peer.endpoint,
					E('code', { 'title': peer.public_key }, peer.public_key.substring(0, 8) + '…'),
					handshake(peer.last_handshake_unix_ms),
					'%1024mB'.format(peer.rx_bytes),
					'%1024mB'.format(peer.tx_bytes)
				];
			}), E('em', running ? _('No peers: none contacted yet') : '-'));

		var cache = status.map_cache, c = status.counters;
		nodes.querySelector('.lispguard-rlocs').textContent =
			running ? ((status.rlocs || []).join(', ') || _('none')) : '-';
		nodes.querySelector('.lispguard-counters').textContent = running
			? _('%d resolved, %d pending, %d negative; %d misses, %d Map-Requests, %d Map-Replies, %d pushes')
				.format(cache.resolved, cache.pending, cache.negative,
					c.misses, c.map_requests, c.map_replies, c.pushes)
			: '-';
	},

	render: function(status) {
		var nodes = E('div', {}, [
			E('h2', _('lispguard')),
			E('div', { 'class': 'cbi-map-descr' },
				_('WireGuard peers on demand: the map-servers this agent registers with, and the peers it has resolved.')),
			E('div', { 'class': 'alert-message warning lispguard-error', 'style': 'display:none' }),
			E('div', { 'class': 'cbi-section' }, [
				E('h3', _('Map-servers')),
				table('lispguard-map-servers', [ _('Control address'), _('Registration') ]),
				E('p', {}, [ _('RLOCs') + ': ', E('span', { 'class': 'lispguard-rlocs' }) ])
			]),
			E('div', { 'class': 'cbi-section' }, [
				E('h3', _('Peers')),
				table('lispguard-peers', [ _('EID prefixes'), _('Endpoint'), _('Public key'),
					_('Last handshake'), _('Received'), _('Sent') ]),
				E('p', { 'class': 'lispguard-counters' })
			])
		]);

		this.update(nodes, status);
		poll.add(L.bind(function() {
			return status().then(L.bind(this.update, this, nodes));
		}, this), 5);

		return nodes;
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});

// The LuCI views of luci-app-lispguard run in node, with stand-ins for
// LuCI's modules (no browser, no LuCI here): what they would show and
// write, for openwrt/tests/run.sh to check against the real agent.
//
//   node luci-views.js settings VIEW_DIR SAMPLES_JSON
//     the UCI file the settings page writes when every option is filled
//     (its placeholder, default or first choice, else SAMPLES_JSON's value)
//   node luci-views.js status VIEW_DIR < STATUS_JSON
//     the rows the status page shows for that answer of the rpcd plugin,
//     as JSON: {error, map_servers, peers, rlocs, counters}
'use strict';
const fs = require('fs');
const path = require('path');

const [mode, dir, samples] = process.argv.slice(2);

// LuCI's String.prototype.format, enough for the views: each %... is the
// next argument; %1024mB a byte count as is.
String.prototype.format = function(...args) {
	return this.replace(/%(1024mB|[sdf])/g, () => String(args.shift()));
};

// A view is a function body with `'require NAME'` lines, run as LuCI's
// loader runs it, with the modules given.
function load(name, modules) {
	const body = fs.readFileSync(path.join(dir, name + '.js'), 'utf8');
	const names = Object.keys(modules);
	return new Function(...names, body)(...names.map((n) => modules[n]));
}

const common = {
	_: (s) => s,
	L: { bind: (f, self, ...args) => f.bind(self, ...args) },
	view: { extend: (o) => o },
	uci: { unset() {} }
};

if (mode === 'settings') {
	const sections = [];
	class Option {
		constructor(kind, name) { this.kind = kind; this.name = name; this.choices = []; }
		value(v) { this.choices.push(v); }
	}
	class Section {
		constructor(type, name) { this.type = type; this.name = name; this.options = []; }
		option(cls, name) { const o = new Option(cls, name); this.options.push(o); return o; }
	}
	const form = {
		Flag: 'Flag', Value: 'Value', ListValue: 'ListValue', DynamicList: 'DynamicList',
		NamedSection: 'NamedSection', TypedSection: 'TypedSection', GridSection: 'GridSection',
		Map: class {
			constructor(config) { this.config = config; }
			section(kind, a, b) {
				const s = kind === 'NamedSection' ? new Section(b, a) : new Section(a, null);
				sections.push(s);
				return s;
			}
			render() { return this; }
		}
	};
	const m = load('settings', { ...common, form }).render();
	const sample = JSON.parse(samples);
	let text = '';
	for (const s of sections) {
		text += `config ${s.type}${s.name ? ` '${s.name}'` : ''}\n`;
		for (const o of s.options) {
			const v = o.placeholder ?? o.default ?? o.choices[0] ??
				sample[`${s.type}.${o.name}`] ?? sample[o.name];
			if (v === undefined)
				throw new Error(`no value for ${s.type}.${o.name}`);
			text += `\t${o.kind === 'DynamicList' ? 'list' : 'option'} ${o.name} '${v}'\n`;
		}
		text += '\n';
	}
	process.stdout.write(`# UCI package ${m.config}\n` + text);
} else if (mode === 'status') {
	// Nodes: elements found by their class; a table keeps the rows
	// cbi_update_table gives it.
	const E = (tag, attrs, children) => {
		const el = { tag, attrs: attrs || {}, children, style: {}, textContent: '' };
		if (typeof attrs === 'string' || Array.isArray(attrs)) {
			el.attrs = {};
			el.children = attrs;
		}
		el.querySelector = (selector) => find(el.children, selector.slice(1));
		return el;
	};
	const text = (x) => x == null ? '' : typeof x === 'object'
		? (Array.isArray(x) ? x.map(text).join('') : text(x.children)) : String(x);
	const find = (el, cls) => {
		if (!el || typeof el !== 'object') return null;
		if (Array.isArray(el)) { for (const c of el) { const f = find(c, cls); if (f) return f; } return null; }
		if ((el.attrs['class'] || '').split(' ').includes(cls)) return el;
		return find(el.children, cls);
	};
	const poll = { add() {} };
	const rpc = { declare: () => () => Promise.resolve(JSON.parse(fs.readFileSync(0, 'utf8'))) };
	global.cbi_update_table = (table, rows) => { table.rows = rows.map((r) => r.map(text)); };
	const view = load('status', { ...common, E, poll, rpc });
	view.load().then((status) => {
		const nodes = view.render(status);
		const error = find(nodes, 'lispguard-error');
		console.log(JSON.stringify({
			error: error.style.display === 'none' ? null : error.textContent,
			map_servers: find(nodes, 'lispguard-map-servers').rows,
			peers: find(nodes, 'lispguard-peers').rows,
			rlocs: find(nodes, 'lispguard-rlocs').textContent,
			counters: find(nodes, 'lispguard-counters').textContent
		}));
	});
} else {
	console.error('usage: node luci-views.js settings|status VIEW_DIR [SAMPLES_JSON]');
	process.exit(2);
}

//! The map-server's state on disk, so that a restart (an upgrade, a crash)
//! is invisible to the sites: registrations with their expiry, revocations,
//! the sites' last observed WireGuard endpoints. One SQLite file; the
//! enrolment work keeps its nodes and tokens in the same file, each entity
//! a table with its few functions here.
//!
//! Durability: WAL journal with `synchronous=NORMAL`. A crash of the
//! process (kill -9, a panic) never loses or corrupts a committed
//! transaction; a power loss or kernel crash may lose the transactions of
//! the last moments before it (never the file's consistency). What is lost
//! then is soft state the sites send again within a register interval.
//!
//! Times are wall-clock unix seconds on disk (the monotonic clock restarts
//! with the host); [`Clock`] converts to and from this run's `Instant`s.

use crate::change::Change;
use crate::db::{Locators, Mapping, Rloc};
use crate::engine::Saved;
use crate::enrolment::Node;
use crate::issue::{Grant, Issued};
use crate::token::TokenId;
use ipnet::IpNet;
use lisp::EidPrefix;
use netconf::PublicKey;
use rusqlite::{params, Connection, OptionalExtension};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The schema this code writes; older files are migrated on open.
const SCHEMA_VERSION: i64 = 3;

const SCHEMA_V1: &str = "
CREATE TABLE registration (
    iid INTEGER NOT NULL,
    prefix TEXT NOT NULL,          -- canonical, e.g. 10.1.0.0/16
    site TEXT NOT NULL,
    key BLOB NOT NULL,             -- WireGuard public key, 32 bytes; empty: none (a plain LISP site)
    rlocs TEXT NOT NULL,           -- 'priority weight address:port' lines
    ttl INTEGER NOT NULL,          -- record TTL, minutes
    registered INTEGER NOT NULL,   -- first registered, unix seconds
    expires INTEGER NOT NULL,      -- unix seconds
    PRIMARY KEY (iid, prefix)
);
CREATE TABLE revocation (
    site TEXT PRIMARY KEY,
    key BLOB NOT NULL              -- the WireGuard key it had when revoked; empty: none
);
CREATE TABLE endpoint (
    site TEXT PRIMARY KEY,
    address TEXT NOT NULL          -- last observed WireGuard endpoint
);
";

/// Version 2: enrolment tokens (see [`crate::issue`]).
const SCHEMA_V2: &str = "
CREATE TABLE token (
    id TEXT PRIMARY KEY,           -- 16 hex digits
    register_key BLOB NOT NULL,    -- derived from the secret (token.rs); the secret is never stored
    iid INTEGER NOT NULL,
    pool TEXT,                     -- one address per node out of it; NULL: fixed prefixes
    prefixes TEXT NOT NULL,        -- fixed EID prefixes, one a line; empty for a pool
    uses_left INTEGER NOT NULL,
    expires INTEGER,               -- unix seconds; NULL: never
    policy_group TEXT,             -- NULL: none
    revoked INTEGER NOT NULL,      -- 0 or 1
    created INTEGER NOT NULL       -- unix seconds
);
";

/// Version 3: enrolled nodes (see [`crate::enrolment`]).
const SCHEMA_V3: &str = "
CREATE TABLE node (
    name TEXT PRIMARY KEY,
    public_key BLOB NOT NULL,      -- WireGuard, 32 bytes
    control_address TEXT NOT NULL,
    eids TEXT NOT NULL,            -- '[iid] prefix' lines
    xtr_id TEXT NOT NULL,          -- 32 hex digits
    token TEXT NOT NULL,           -- the token it enrolled with
    policy_group TEXT,
    register_key TEXT NOT NULL,    -- its Map-Register key (derived from both WireGuard keys)
    created INTEGER NOT NULL       -- unix seconds
);
";

/// A store error, with what the map-server was doing.
#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn context<T>(what: &str, result: rusqlite::Result<T>) -> Result<T, Error> {
    result.map_err(|e| Error(format!("{what}: {e}")))
}

/// This run's monotonic clock against the wall clock, taken at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    wall: Duration,
    at: Instant,
}

impl Clock {
    pub fn now() -> Clock {
        Clock {
            wall: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            at: Instant::now(),
        }
    }

    /// Unix seconds of an instant of this run.
    pub fn unix(&self, instant: Instant) -> i64 {
        let wall = self.wall.as_secs() as i64;
        if instant >= self.at {
            wall + instant.duration_since(self.at).as_secs() as i64
        } else {
            wall - self.at.duration_since(instant).as_secs() as i64
        }
    }

    /// The instant of this run at unix second `unix`; times before this
    /// run's clock began map to its start of the known range (now).
    pub fn instant(&self, unix: i64) -> Instant {
        let delta = unix - self.wall.as_secs() as i64;
        if delta >= 0 {
            self.at + Duration::from_secs(delta as u64)
        } else {
            self.at
                .checked_sub(Duration::from_secs(delta.unsigned_abs()))
                .unwrap_or(self.at)
        }
    }
}

pub struct Store {
    db: Connection,
}

impl Store {
    /// Opens (or creates) the store at `path`; creates its directory, 0700,
    /// if missing (the file names every site's key and endpoint).
    pub fn open(path: &Path) -> Result<Store, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| Error(format!("creating {}: {e}", dir.display())))?;
            }
        }
        let what = format!("opening {}", path.display());
        let db = context(&what, Connection::open(path))?;
        context(&what, db.pragma_update(None, "journal_mode", "WAL"))?;
        context(&what, db.pragma_update(None, "synchronous", "NORMAL"))?;
        context(&what, db.busy_timeout(Duration::from_secs(5)))?;
        let mut store = Store { db };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), Error> {
        let version: i64 = context(
            "reading the schema version",
            self.db
                .pragma_query_value(None, "user_version", |r| r.get(0)),
        )?;
        if version > SCHEMA_VERSION {
            return Err(Error(format!(
                "the state file has schema version {version}, newer than this map-server's \
                 {SCHEMA_VERSION}: written by a newer release"
            )));
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        // One transaction: a file is at one version or the next, never
        // between.
        let what = format!("migrating the schema from version {version}");
        let tx = context(&what, self.db.transaction())?;
        for (from, schema) in [(1, SCHEMA_V1), (2, SCHEMA_V2), (3, SCHEMA_V3)] {
            if version < from {
                context(&what, tx.execute_batch(schema))?;
            }
        }
        context(
            &what,
            tx.pragma_update(None, "user_version", SCHEMA_VERSION),
        )?;
        context(&what, tx.commit())
    }

    /// Keeps a token issued (`token create`).
    pub fn add_token(&mut self, token: &Issued) -> Result<(), Error> {
        context("saving a token", insert_token(&self.db, token, "INSERT"))
    }

    /// Every token kept, oldest first; rows that no longer parse are
    /// skipped (and logged).
    pub fn tokens(&self) -> Result<Vec<Issued>, Error> {
        let what = "reading tokens";
        let mut statement = context(
            what,
            self.db.prepare(
                "SELECT id, register_key, iid, pool, prefixes, uses_left, expires, policy_group,
                        revoked, created
                 FROM token ORDER BY created, id",
            ),
        )?;
        let rows = context(
            what,
            statement.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    Issued {
                        id: TokenId([0; 8]),
                        register_key: [0; 32],
                        iid: r.get(2)?,
                        grant: Grant::Prefixes(Vec::new()),
                        uses_left: r.get(5)?,
                        expires: r.get(6)?,
                        group: r.get(7)?,
                        revoked: r.get(8)?,
                        created: r.get(9)?,
                    },
                ))
            }),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (id, key, pool, prefixes, mut token) = context(what, row)?;
            let grant = match pool {
                Some(pool) => pool.parse().ok().map(Grant::Pool),
                None => prefixes
                    .lines()
                    .map(|p| p.parse().ok())
                    .collect::<Option<Vec<IpNet>>>()
                    .filter(|p| !p.is_empty())
                    .map(Grant::Prefixes),
            };
            let parsed = id
                .parse()
                .ok()
                .zip(<[u8; 32]>::try_from(key).ok())
                .zip(grant);
            let Some(((id, register_key), grant)) = parsed else {
                log::warn!("state file: token {id} unreadable, dropped");
                continue;
            };
            token.id = id;
            token.register_key = register_key;
            token.grant = grant;
            out.push(token);
        }
        Ok(out)
    }

    /// Revokes token `id`: it enrols no node from now on. False if there
    /// is no such token.
    pub fn revoke_token(&mut self, id: TokenId) -> Result<bool, Error> {
        let changed = context(
            "revoking a token",
            self.db.execute(
                "UPDATE token SET revoked = 1 WHERE id = ?1",
                [id.to_string()],
            ),
        )?;
        Ok(changed == 1)
    }

    /// The nodes enrolled; rows that no longer parse are skipped (and
    /// logged).
    pub fn nodes(&self) -> Result<Vec<Node>, Error> {
        let what = "reading enrolled nodes";
        let mut statement = context(
            what,
            self.db.prepare(
                "SELECT name, public_key, control_address, eids, xtr_id, token, policy_group,
                 register_key, created FROM node ORDER BY created, name",
            ),
        )?;
        let rows = context(
            what,
            statement.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            }),
        )?;
        let mut nodes = Vec::new();
        for row in rows {
            let (name, public_key, control, eids, xtr_id, token, group, key, created) =
                context(what, row)?;
            let node = (|| {
                Some(Node {
                    public_key: public_key.try_into().ok()?,
                    control_address: control.parse().ok()?,
                    eids: eids
                        .lines()
                        .map(|e| e.parse().ok())
                        .collect::<Option<Vec<EidPrefix>>>()?,
                    xtr_id: u128::from_str_radix(&xtr_id, 16).ok()?,
                    token: token.parse().ok()?,
                    group,
                    key,
                    created,
                    name: name.clone(),
                })
            })();
            match node {
                Some(node) => nodes.push(node),
                None => log::warn!("state file: node '{name}' unreadable, dropped"),
            }
        }
        Ok(nodes)
    }

    /// Everything kept, for [`crate::engine::MapServer::restore`]; rows
    /// that no longer parse are skipped (and logged).
    pub fn load(&self, clock: &Clock) -> Result<Saved, Error> {
        Ok(Saved {
            registrations: self.registrations(clock)?,
            revoked: self.revocations()?,
            observed: self.endpoints()?,
        })
    }

    /// Writes `changes` in one transaction, in order.
    pub fn apply<'a>(
        &mut self,
        changes: impl IntoIterator<Item = &'a Change>,
        clock: &Clock,
    ) -> Result<(), Error> {
        let what = "saving the state";
        let tx = context(what, self.db.transaction())?;
        for change in changes {
            context(what, apply_one(&tx, change, clock))?;
        }
        context(what, tx.commit())
    }

    fn registrations(&self, clock: &Clock) -> Result<Vec<(String, Mapping)>, Error> {
        let what = "reading registrations";
        let mut statement = context(
            what,
            self.db.prepare(
                "SELECT iid, prefix, site, key, rlocs, ttl, registered, expires FROM registration",
            ),
        )?;
        let rows = context(
            what,
            statement.query_map([], |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                ))
            }),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (iid, prefix, site, key, rlocs, ttl, registered, expires) = context(what, row)?;
            let parsed = prefix
                .parse()
                .ok()
                .map(|p| EidPrefix::new(iid, p))
                .zip(key_of(&key))
                .zip(parse_rlocs(&rlocs));
            let Some(((eid, key), rlocs)) = parsed else {
                log::warn!(
                    "state file: registration [{iid}] {prefix} of '{site}' unreadable, dropped"
                );
                continue;
            };
            out.push((
                site,
                Mapping {
                    site: None,
                    eid,
                    key,
                    rlocs,
                    ttl,
                    registered: clock.instant(registered),
                    expires: Some(clock.instant(expires)),
                },
            ));
        }
        Ok(out)
    }

    fn revocations(&self) -> Result<Vec<(String, Option<PublicKey>)>, Error> {
        let what = "reading revocations";
        let mut statement = context(what, self.db.prepare("SELECT site, key FROM revocation"))?;
        let rows = context(
            what,
            statement.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            }),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (site, key) = context(what, row)?;
            match key_of(&key) {
                Some(key) => out.push((site, key)),
                None => log::warn!("state file: revocation of '{site}' unreadable, dropped"),
            }
        }
        Ok(out)
    }

    fn endpoints(&self) -> Result<Vec<(String, SocketAddr)>, Error> {
        let what = "reading endpoints";
        let mut statement = context(what, self.db.prepare("SELECT site, address FROM endpoint"))?;
        let rows = context(
            what,
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (site, address) = context(what, row)?;
            if let Ok(address) = address.parse() {
                out.push((site, address));
            }
        }
        Ok(out)
    }

    /// The revoked key of `site`, if it is revoked (tests, tools).
    pub fn revocation(&self, site: &str) -> Result<Option<PublicKey>, Error> {
        let key: Option<Vec<u8>> = context(
            "reading a revocation",
            self.db
                .query_row("SELECT key FROM revocation WHERE site = ?1", [site], |r| {
                    r.get(0)
                })
                .optional(),
        )?;
        Ok(key.and_then(|k| key_of(&k)).flatten())
    }
}

/// A key column: 32 bytes, or empty for none (a plain LISP site has no
/// WireGuard key); None when it is neither.
fn key_of(blob: &[u8]) -> Option<Option<PublicKey>> {
    match blob {
        [] => Some(None),
        key => PublicKey::try_from(key).ok().map(Some),
    }
}

/// What a key column holds for `key`.
fn key_blob(key: &Option<PublicKey>) -> &[u8] {
    key.as_ref().map_or(&[], |k| k.as_slice())
}

fn apply_one(
    tx: &rusqlite::Transaction<'_>,
    change: &Change,
    clock: &Clock,
) -> rusqlite::Result<()> {
    match change {
        Change::Registered { site, mapping } => {
            tx.execute(
                "INSERT OR REPLACE INTO registration
                 (iid, prefix, site, key, rlocs, ttl, registered, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    mapping.eid.iid,
                    mapping.eid.prefix.to_string(),
                    site,
                    key_blob(&mapping.key),
                    format_rlocs(&mapping.rlocs),
                    mapping.ttl,
                    clock.unix(mapping.registered),
                    // A mapping without expiry is static: never stored, but
                    // a row must still expire.
                    mapping.expires.map_or(0, |at| clock.unix(at)),
                ],
            )?;
        }
        Change::Withdrawn { eid } => {
            tx.execute(
                "DELETE FROM registration WHERE iid = ?1 AND prefix = ?2",
                params![eid.iid, eid.prefix.to_string()],
            )?;
        }
        Change::Revoked { site, key } => {
            tx.execute(
                "INSERT OR REPLACE INTO revocation (site, key) VALUES (?1, ?2)",
                params![site, key_blob(key)],
            )?;
        }
        Change::Unrevoked { site } => {
            tx.execute("DELETE FROM revocation WHERE site = ?1", [site])?;
        }
        Change::Observed { site, endpoint } => {
            tx.execute(
                "INSERT OR REPLACE INTO endpoint (site, address) VALUES (?1, ?2)",
                params![site, endpoint.to_string()],
            )?;
        }
        Change::Renamed { from, to } => {
            let named = [
                ("node", "name"),
                ("registration", "site"),
                ("endpoint", "site"),
                ("revocation", "site"),
            ];
            for (table, column) in named {
                tx.execute(
                    &format!("UPDATE {table} SET {column} = ?1 WHERE {column} = ?2"),
                    params![to, from],
                )?;
            }
        }
        // Its row may be there: kept as it was, uses and revocation.
        Change::TokenLearnt(token) => insert_token(tx, token, "INSERT OR IGNORE")?,
        Change::Enrolled { node, uses_left } => {
            let eids: Vec<String> = node.eids.iter().map(|e| e.to_string()).collect();
            tx.execute(
                "INSERT OR REPLACE INTO node (name, public_key, control_address, eids, xtr_id,
                 token, policy_group, register_key, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    node.name,
                    node.public_key.as_slice(),
                    node.control_address.to_string(),
                    eids.join("\n"),
                    format!("{:032x}", node.xtr_id),
                    node.token.to_string(),
                    node.group,
                    node.key,
                    node.created,
                ],
            )?;
            tx.execute(
                "UPDATE token SET uses_left = ?1 WHERE id = ?2",
                params![uses_left, node.token.to_string()],
            )?;
        }
    }
    Ok(())
}

/// Keeps a token, issued here or a group token learnt; `insert` is the
/// statement's verb (what a row with its id makes of it).
fn insert_token(db: &rusqlite::Connection, token: &Issued, insert: &str) -> rusqlite::Result<()> {
    let (pool, prefixes) = match &token.grant {
        Grant::Pool(pool) => (Some(pool.to_string()), String::new()),
        Grant::Prefixes(prefixes) => (
            None,
            prefixes
                .iter()
                .map(IpNet::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    };
    db.execute(
        &format!(
            "{insert} INTO token (id, register_key, iid, pool, prefixes, uses_left, expires,
                                  policy_group, revoked, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            token.id.to_string(),
            token.register_key.as_slice(),
            token.iid,
            pool,
            prefixes,
            token.uses_left,
            token.expires,
            token.group,
            token.revoked,
            token.created,
        ],
    )
    .map(drop)
}

fn format_rlocs(rlocs: &[Rloc]) -> String {
    rlocs
        .iter()
        .map(|r| format!("{} {} {}", r.priority, r.weight, r.address))
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_rlocs(text: &str) -> Option<Locators> {
    let mut rlocs = Locators::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut fields = line.split(' ');
        let rloc = Rloc {
            priority: fields.next()?.parse().ok()?,
            weight: fields.next()?.parse().ok()?,
            address: fields.next()?.parse().ok()?,
        };
        if rlocs.len() == lisp::MAX_LOCATORS {
            return None;
        }
        rlocs.push(rloc);
    }
    Some(rlocs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(eid: &str, expires: Instant) -> Mapping {
        let rlocs = Locators::from_elem(
            Rloc {
                address: "172.31.2.2:51820".parse().unwrap(),
                priority: 1,
                weight: 100,
            },
            1,
        );
        Mapping {
            site: Some(3),
            eid: eid.parse().unwrap(),
            key: Some([7; 32]),
            rlocs,
            ttl: 15,
            registered: expires - Duration::from_secs(100),
            expires: Some(expires),
        }
    }

    #[test]
    fn state_survives_reopening_and_changes_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("lgstore-{}", std::process::id()));
        let path = dir.join("sub/ms.db");
        let clock = Clock::now();
        let later = clock.at + Duration::from_secs(180);
        {
            let mut store = Store::open(&path).unwrap();
            store
                .apply(
                    &[
                        Change::Registered {
                            site: "a".into(),
                            mapping: Box::new(mapping("[1000] 10.1.0.0/24", later)),
                        },
                        Change::Registered {
                            site: "b".into(),
                            mapping: Box::new(mapping("[1000] 10.2.0.0/24", later)),
                        },
                        Change::Withdrawn {
                            eid: "[1000] 10.2.0.0/24".parse().unwrap(),
                        },
                        Change::Revoked {
                            site: "b".into(),
                            key: Some([9; 32]),
                        },
                        Change::Observed {
                            site: "a".into(),
                            endpoint: "203.0.113.1:4000".parse().unwrap(),
                        },
                    ],
                    &clock,
                )
                .unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let store = Store::open(&path).unwrap();
        let saved = store.load(&Clock::now()).unwrap();
        assert_eq!(saved.registrations.len(), 1);
        let (site, m) = &saved.registrations[0];
        assert_eq!(site, "a");
        assert_eq!(m.eid, "[1000] 10.1.0.0/24".parse().unwrap());
        assert_eq!(m.rlocs, mapping("[1000] 10.1.0.0/24", later).rlocs);
        let expires = m.expires.unwrap();
        assert!(expires.duration_since(clock.at) <= Duration::from_secs(181));
        assert!(expires.duration_since(clock.at) >= Duration::from_secs(179));
        assert_eq!(saved.revoked, vec![("b".to_string(), Some([9; 32]))]);
        assert_eq!(store.revocation("b").unwrap(), Some([9; 32]));
        assert_eq!(
            saved.observed,
            vec![("a".to_string(), "203.0.113.1:4000".parse().unwrap())]
        );
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn issued(id: u8, grant: Grant) -> Issued {
        Issued {
            id: TokenId([id; 8]),
            register_key: [id; 32],
            iid: 1000,
            grant,
            uses_left: 20,
            expires: Some(1_900_000_000),
            group: Some("robots".into()),
            revoked: false,
            created: 1_800_000_000 + i64::from(id),
        }
    }

    #[test]
    fn tokens_are_kept_listed_and_revoked_across_reopening() {
        let dir = std::env::temp_dir().join(format!("lgstore-tok-{}", std::process::id()));
        let path = dir.join("ms.db");
        let pool = issued(1, Grant::Pool("10.9.0.0/24".parse().unwrap()));
        let fixed = Issued {
            expires: None,
            group: None,
            uses_left: 1,
            ..issued(
                2,
                Grant::Prefixes(vec![
                    "10.8.1.0/24".parse().unwrap(),
                    "fd00:8::/64".parse().unwrap(),
                ]),
            )
        };
        {
            let mut store = Store::open(&path).unwrap();
            store.add_token(&pool).unwrap();
            store.add_token(&fixed).unwrap();
            assert!(store.add_token(&pool).is_err(), "an id is unique");
            assert!(store.revoke_token(TokenId([1; 8])).unwrap());
            assert!(!store.revoke_token(TokenId([3; 8])).unwrap());
        }
        let store = Store::open(&path).unwrap();
        let revoked = Issued {
            revoked: true,
            ..pool
        };
        assert_eq!(store.tokens().unwrap(), vec![revoked, fixed]);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn enrolled_nodes_take_a_use_keep_their_registrations_when_renamed_and_reopen() {
        let dir = std::env::temp_dir().join(format!("lgstore-node-{}", std::process::id()));
        let path = dir.join("ms.db");
        let token = issued(1, Grant::Pool("10.9.0.0/24".parse().unwrap()));
        let node = Node {
            name: "node-100.64.1.1".into(),
            public_key: [7; 32],
            control_address: "100.64.1.1".parse().unwrap(),
            eids: vec!["[1000] 10.9.0.1/32".parse().unwrap()],
            xtr_id: 0xfeed,
            token: token.id,
            group: Some("robots".into()),
            key: "derived".into(),
            created: 1_700_000_000,
        };
        let clock = Clock::now();
        let expires = Instant::now() + Duration::from_secs(600);
        {
            let mut store = Store::open(&path).unwrap();
            store.add_token(&token).unwrap();
            let changes = [
                Change::Enrolled {
                    node: Box::new(node.clone()),
                    uses_left: 19,
                },
                Change::Registered {
                    site: node.name.clone(),
                    mapping: Box::new(mapping("[1000] 10.9.0.1/32", expires)),
                },
                Change::Renamed {
                    from: node.name.clone(),
                    to: "robot-7".into(),
                },
            ];
            store.apply(&changes, &clock).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let renamed = Node {
            name: "robot-7".into(),
            ..node
        };
        assert_eq!(store.nodes().unwrap(), vec![renamed]);
        assert_eq!(store.tokens().unwrap()[0].uses_left, 19);
        let saved = store.load(&clock).unwrap();
        assert_eq!(saved.registrations[0].0, "robot-7");
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_state_file_of_schema_1_is_migrated_and_keeps_its_registrations() {
        let dir = std::env::temp_dir().join(format!("lgstore-v1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ms.db");
        // A file as the previous release wrote it.
        let db = Connection::open(&path).unwrap();
        db.execute_batch(SCHEMA_V1).unwrap();
        db.pragma_update(None, "user_version", 1).unwrap();
        db.execute(
            "INSERT INTO registration VALUES (1000, '10.1.0.0/24', 'a', ?1,
             '1 100 172.31.2.2:51820', 15, 1, 4000000000)",
            [[7u8; 32].as_slice()],
        )
        .unwrap();
        drop(db);

        let mut store = Store::open(&path).unwrap();
        let version: i64 = store
            .db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let saved = store.load(&Clock::now()).unwrap();
        assert_eq!(saved.registrations.len(), 1);
        assert_eq!(saved.registrations[0].0, "a");
        assert_eq!(saved.registrations[0].1.key, Some([7; 32]));
        let token = issued(4, Grant::Pool("10.9.0.0/24".parse().unwrap()));
        store.add_token(&token).unwrap();
        drop(store);
        // Opened again: nothing to migrate, everything there.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.tokens().unwrap(), vec![token]);
        assert_eq!(store.load(&Clock::now()).unwrap().registrations.len(), 1);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = std::env::temp_dir().join(format!("lgstore-new-{}", std::process::id()));
        let path = dir.join("ms.db");
        drop(Store::open(&path).unwrap());
        let db = Connection::open(&path).unwrap();
        db.pragma_update(None, "user_version", 99).unwrap();
        drop(db);
        assert!(Store::open(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

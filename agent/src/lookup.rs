//! `lispguard lookup EID`: what this node would get from a map-server for
//! an EID (the LISP tools' `lig`). The running agent asks, since it owns
//! the site's key, the nonces and the WireGuard path to the map-servers;
//! it installs nothing (see [`crate::engine::Agent::lookup`]). The answer
//! is printed the way `status` prints peers, or as JSON.

use crate::status::{ago, string};
use lisp::{map_reply, Action, EidPrefix, MapReply, Record, TTL_INFINITE};
use netconf::{format_key, key_fingerprint};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

/// What a lookup asks, as the status socket carries it:
/// `lookup EID` or `lookup EID json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    pub eid: IpAddr,
    pub json: bool,
}

impl Query {
    /// The request line for the status socket.
    pub fn line(&self) -> String {
        match self.json {
            true => format!("lookup {} json", self.eid),
            false => format!("lookup {}", self.eid),
        }
    }

    /// A request line's arguments (after `lookup`).
    pub fn parse(args: &str) -> Result<Query, String> {
        let mut words = args.split_whitespace();
        let eid = parse_eid(words.next().unwrap_or(""))?;
        let json = match words.next() {
            None => false,
            Some("json") => true,
            Some(other) => return Err(format!("'{other}': expected json or nothing")),
        };
        Ok(Query { eid, json })
    }
}

/// An EID as the command line gives it: one address (IPv4 or IPv6).
pub fn parse_eid(text: &str) -> Result<IpAddr, String> {
    text.parse().map_err(|_| {
        format!("'{text}' is not an EID: give one IPv4 or IPv6 address (such as 10.2.0.2)")
    })
}

/// The answer to `query` in instance `iid`: the Map-Reply the map-server
/// at `map_server` sent, or the error that none came.
pub fn show(query: Query, iid: u32, map_server: IpAddr, reply: Option<&[u8]>) -> String {
    let Some(bytes) = reply else {
        return format!(
            "error: no Map-Reply for {} within {} ms (last asked: the map-server at {map_server})\n",
            query.eid,
            crate::engine::REQUEST_GIVE_UP.as_millis()
        );
    };
    let packet = match map_reply::Packet::new_checked(bytes) {
        Ok(packet) => packet,
        Err(e) => {
            return format!(
                "error: the map-server at {map_server} sent an unreadable Map-Reply: {e}\n"
            )
        }
    };
    let reply = MapReply::parse(&packet);
    let records: Vec<Record> = reply.records.iter().collect();
    match query.json {
        true => json(query.eid, iid, map_server, &records),
        false => table(query.eid, iid, map_server, &records),
    }
}

/// The ACT field's name (RFC 9301 §5.4).
fn action_name(action: Action) -> String {
    match action {
        Action::NO_ACTION => "no-action".into(),
        Action::NATIVELY_FORWARD => "natively-forward".into(),
        Action::SEND_MAP_REQUEST => "send-map-request".into(),
        Action::DROP_NO_REASON => "drop".into(),
        Action::DROP_POLICY_DENIED => "drop/policy-denied".into(),
        Action::DROP_AUTH_FAILURE => "drop/auth-failure".into(),
        Action(other) => format!("act {other}"),
    }
}

fn ttl(record: &Record) -> Option<Duration> {
    (record.ttl != TTL_INFINITE).then(|| Duration::from_secs(u64::from(record.ttl) * 60))
}

fn prefix(record: &Record) -> String {
    EidPrefix::from_address(&record.eid, record.eid_mask_len)
        .map_or_else(|| "?".into(), |e| e.prefix.to_string())
}

/// A locator's WireGuard endpoint, or its address as given.
fn locator(l: &lisp::Locator) -> String {
    l.rloc
        .endpoint()
        .map_or_else(|| format!("{:?}", l.rloc), |e| e.to_string())
}

fn table(eid: IpAddr, iid: u32, map_server: IpAddr, records: &[Record]) -> String {
    let mut out = format!("EID {eid} in instance {iid}: the map-server at {map_server} answers\n");
    if records.is_empty() {
        out.push_str("  no record\n");
        return out;
    }
    let _ = writeln!(
        out,
        "  {:<11} {:<22} {:>5}  LOCATORS (priority/weight)",
        "KEY", "EID PREFIX", "TTL"
    );
    for r in records {
        let key = r
            .eid
            .wireguard_key()
            .map_or("-".into(), |k| key_fingerprint(&k));
        let locators: Vec<String> = r
            .locators
            .iter()
            .map(|l| format!("{} ({}/{})", locator(&l), l.priority, l.weight))
            .collect();
        let what = if locators.is_empty() {
            format!("negative: {}", action_name(r.action))
        } else {
            locators.join(", ")
        };
        let revoked = if r.eid.revoked() { " (revoked)" } else { "" };
        let _ = writeln!(
            out,
            "  {:<11} {:<22} {:>5}  {what}{revoked}",
            key,
            prefix(r),
            ttl(r).map_or("never".into(), ago),
        );
    }
    out
}

fn json(eid: IpAddr, iid: u32, map_server: IpAddr, records: &[Record]) -> String {
    let records: Vec<String> = records
        .iter()
        .map(|r| {
            let locators: Vec<String> = r
                .locators
                .iter()
                .map(|l| {
                    format!(
                        "{{\"endpoint\":{},\"priority\":{},\"weight\":{},\"reachable\":{}}}",
                        string(&locator(&l)),
                        l.priority,
                        l.weight,
                        l.reachable
                    )
                })
                .collect();
            format!(
                "{{\"eid_prefix\":{},\"public_key\":{},\"ttl_seconds\":{},\"negative\":{},\"action\":{},\"revoked\":{},\"locators\":[{}]}}",
                string(&prefix(r)),
                r.eid
                    .wireguard_key()
                    .map_or("null".into(), |k| string(&format_key(&k))),
                ttl(r).map_or("null".into(), |t| t.as_secs().to_string()),
                r.locators.is_empty(),
                string(&action_name(r.action)),
                r.eid.revoked(),
                locators.join(",")
            )
        })
        .collect();
    format!(
        "{{\"eid\":{},\"iid\":{iid},\"map_server\":{},\"records\":[{}]}}\n",
        string(&eid.to_string()),
        string(&map_server.to_string()),
        records.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lisp::{Address, List, Locator};

    fn reply(records: &[Record]) -> Vec<u8> {
        let reply = MapReply {
            nonce: 7,
            records: List::new(records),
            ..Default::default()
        };
        let mut buf = vec![0u8; 1500];
        let len = reply.emit(&mut buf).unwrap();
        buf.truncate(len);
        buf
    }

    const MS: &str = "100.64.0.1";

    #[test]
    fn a_mapping_shows_key_prefix_ttl_and_locators() {
        let key = [7u8; 32];
        let locators = [Locator::reachable(Address::rloc(
            "172.31.3.2:51820".parse().unwrap(),
        ))];
        let eid = EidPrefix::new(1000, "10.2.0.0/24".parse().unwrap());
        let bytes = reply(&[Record::mapping(&eid, Some(&key), 15, &locators)]);
        let query = Query::parse("10.2.0.2").unwrap();
        let text = show(query, 1000, MS.parse().unwrap(), Some(&bytes));
        assert!(
            text.starts_with(
                "EID 10.2.0.2 in instance 1000: the map-server at 100.64.0.1 answers\n"
            ),
            "{text}"
        );
        let row = text.lines().last().unwrap();
        assert!(row.contains(&key_fingerprint(&key)), "{text}");
        assert!(row.contains("10.2.0.0/24") && row.contains("15m"), "{text}");
        assert!(row.contains("172.31.3.2:51820 (1/100)"), "{text}");
        let json = show(
            Query {
                json: true,
                ..query
            },
            1000,
            MS.parse().unwrap(),
            Some(&bytes),
        );
        assert!(
            json.contains(&format!("\"public_key\":\"{}\"", format_key(&key))),
            "{json}"
        );
        assert!(
            json.contains("\"endpoint\":\"172.31.3.2:51820\",\"priority\":1,\"weight\":100"),
            "{json}"
        );
        assert!(json.contains("\"negative\":false"), "{json}");
    }

    #[test]
    fn a_negative_answer_shows_its_action_and_no_answer_is_an_error() {
        let eid = Address::eid(1000, "10.99.0.0".parse().unwrap(), None);
        let bytes = reply(&[Record::negative(eid, 16, 1, Action::DROP_NO_REASON)]);
        let query = Query::parse("10.99.0.1 json").unwrap();
        let json = show(query, 1000, MS.parse().unwrap(), Some(&bytes));
        assert!(json.contains("\"eid_prefix\":\"10.99.0.0/16\",\"public_key\":null,\"ttl_seconds\":60,\"negative\":true,\"action\":\"drop\""), "{json}");
        let text = show(
            Query {
                json: false,
                ..query
            },
            1000,
            MS.parse().unwrap(),
            Some(&bytes),
        );
        assert!(text.contains("negative: drop"), "{text}");
        let none = show(query, 1000, MS.parse().unwrap(), None);
        assert!(
            none.starts_with("error: no Map-Reply for 10.99.0.1 within"),
            "{none}"
        );
    }

    #[test]
    fn a_bad_eid_says_what_an_eid_is() {
        let err = Query::parse("10.2.0.0/24").unwrap_err();
        assert!(err.contains("not an EID"), "{err}");
        assert!(Query::parse("10.2.0.2 yaml").is_err());
        assert_eq!(Query::parse("::1 json").unwrap().line(), "lookup ::1 json");
    }
}

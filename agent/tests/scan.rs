//! One host behind site A scans 10,000 unregistered overlay addresses at
//! 1000/s; meanwhile another host of A makes 20 first contacts, each to
//! a destination A has no cache entry for (4 sites x 5 EID-Prefixes).
//! Every contact is answered and the agent keeps answering `status`.
//! Needs root, iproute2, wireguard-go, ping.

mod e2e;

use e2e::lab::Lab;
use e2e::{ping, scan};

#[test]
fn first_contacts_from_another_host_succeed_during_a_scan() {
    let (mut lab, destinations, scanner) = Lab::for_a_scan("sc");
    lab.start();
    let host = lab.get("a").host.clone();
    let _ = lab.agent("a").log.try_iter().count();
    let requests_before = lab.status_counter("a", "map_requests");
    let begin = std::time::Instant::now();

    let (started, under_way) = std::sync::mpsc::channel();
    let scanning = scan(&scanner, 10_000, 1000, started);
    under_way.recv().expect("the scan is under way");
    for to in &destinations {
        let (received, text) = ping(&host, to, 1);
        assert_eq!(
            received, 1,
            "first contact to {to} during the scan:\n{text}"
        );
        let status = lab.status("a");
        assert!(
            status.contains("\"counters\""),
            "status answers: {status:?}"
        );
    }
    assert!(
        !scanning.is_finished(),
        "the contacts were made while the scan ran"
    );
    let sent = scanning.join().unwrap();
    let seconds = begin.elapsed().as_secs_f64();
    assert!(sent > 9_000, "the scan sent {sent}");
    // The site stays under the map-server's per-site limit (1000
    // messages/s): the scan does not use up everyone's allowance.
    let requests = lab.status_counter("a", "map_requests") - requests_before;
    assert!(
        (requests as f64) < 1000.0 * seconds,
        "{requests} Map-Requests in {seconds:.1} s"
    );
    // The log sums up; it has no line per scanned packet.
    let lines = lab.agent("a").log.try_iter().count();
    assert!(lines < 1000, "{lines} log lines for {sent} scanned packets");
}

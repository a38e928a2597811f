#!/usr/bin/env bash
# The figures of docs/benchmarks.md: runs the benchmarks, keeps their data
# under docs/benchmarks/ and renders the SVG plots from it with gnuplot.
# Run as root on Debian 12:
#
#   bash tests/bench/plots.sh            (every benchmark, ~12 min; then render)
#   bash tests/bench/plots.sh load ...   (only those: first-contact, load, throughput,
#                                         handover, memory, topologies)
#   bash tests/bench/plots.sh --render   (only the plots and summary, from the kept data)
#
# Data (TSV, one header line), each written by the benchmark itself:
#   first-contact.tsv   system, trial, ms, lost: first ping between cold nodes
#                       (agent/benches/first_contact.rs, 100 interleaved trials)
#   mapserver-load.tsv  one line per run of mapserver/benches/load.rs, 10 to 1M EIDs
#   throughput.tsv      iperf3 TCP and UDP per system (agent/benches/throughput.rs)
#   handover.tsv        kind, trial, ms, lost: time without replies while mobile
#                       nodes move (agent/benches/handover.rs, 20 per kind)
#   memory.tsv          agent and wireguard-go RSS by number of peers
#                       (agent/benches/memory.rs, 0 to 1000)
#   topologies.tsv      topology, trial, ms, lost, path: first ping between cold sites
#                       per topology (agent/benches/topologies.rs, 20 interleaved trials)
#   relay-throughput.tsv  iperf3 TCP relayed and direct, with CPU seconds per run
#                       (agent/benches/relay_throughput.rs)
# beside the benchmarks' printed tables (*.txt), the machine (machine.txt)
# and when and at which commit each was run (runs.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/benchmarks
trials=100
seconds=5
handovers=20
topology_trials=20
relay_seconds=10
sizes=(10 100 1000 10000 100000 1000000)

packages=()
command -v gnuplot >/dev/null || packages+=(gnuplot-nox)
[ "${1:-}" = --render ] || command -v iperf3 >/dev/null || packages+=(iperf3)
[ "${1:-}" = --render ] || command -v conntrack >/dev/null || packages+=(conntrack)
if [ ${#packages[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
mkdir -p "$out"

# Records that `$1`'s data were taken now, at this commit.
ran() {
  touch "$out/runs.txt"
  { grep -v "^$1 " "$out/runs.txt" || true
    echo "$1 $(date -u +%Y-%m-%dT%H:%MZ) $(git rev-parse --short HEAD)"; } >"$out/runs.txt.new"
  mv "$out/runs.txt.new" "$out/runs.txt"
}

if [ "${1:-}" != --render ]; then
  parts=("$@")
  [ ${#parts[@]} -gt 0 ] || parts=(first-contact load throughput handover memory topologies)
  export CARGO_INCREMENTAL=0
  # Installs Nebula and the lab's tools, builds the daemons in release
  # (the throughput bench's lab runs them too).
  bash tests/bench/first-contact.sh --build-only
  # cargo runs each bench in its package's directory: absolute paths.
  for part in "${parts[@]}"; do
    case $part in
      first-contact)
        bash tests/bench/first-contact.sh "$trials" --data "$PWD/$out/first-contact.tsv" \
          | tee "$out/first-contact.txt" ;;
      load)
        cargo bench -p mapserver --bench load --locked -- "$seconds" "${sizes[@]}" \
          --data "$PWD/$out/mapserver-load.tsv" | tee "$out/mapserver-load.txt" ;;
      throughput)
        cargo bench -p agent --bench throughput --locked -- "$seconds" \
          --data "$PWD/$out/throughput.tsv" | tee "$out/throughput.txt" ;;
      handover)
        cargo bench -p agent --bench handover --locked -- "$handovers" \
          --data "$PWD/$out/handover.tsv" | tee "$out/handover.txt" ;;
      memory)
        cargo bench -p agent --bench memory --locked -- \
          --data "$PWD/$out/memory.tsv" | tee "$out/memory.txt" ;;
      topologies)
        cargo bench -p agent --bench topologies --locked -- "$topology_trials" \
          --data "$PWD/$out/topologies.tsv" | tee "$out/topologies.txt"
        cargo bench -p agent --bench relay_throughput --locked -- "$relay_seconds" \
          --data "$PWD/$out/relay-throughput.tsv" | tee "$out/relay-throughput.txt" ;;
      *) echo "plots.sh: no benchmark $part (first-contact, load, throughput, handover, memory, topologies)" >&2
         exit 2 ;;
    esac
    ran "$part"
  done
  {
    echo "cpu: $(nproc) x $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
    echo "kernel: $(uname -r)"
    echo "wireguard-go: $(dpkg-query -W -f '${Version}' wireguard-go)"
    echo "nebula: $(dpkg-query -W -f '${Version}' nebula)"
    echo "iperf3: $(dpkg-query -W -f '${Version}' iperf3)"
    echo "rustc: $(rustc --version)"
  } >"$out/machine.txt"
fi

# The figures of the table in docs/benchmarks.md. Quantiles: nearest rank
# (as the benchmark prints them), over the answered pings.
{
  printf "%-18s %7s %7s %7s %7s %7s %6s\n" "first ping (ms)" mean p50 p90 p99 max lost
  tail -n +2 "$out/first-contact.tsv" | sort -t "$(printf '\t')" -k1,1 -k3,3g | awk -F '\t' '
    { n[$1]++; if ($4 == 1) lost[$1]++; else { ms[$1, ++k[$1]] = $3; sum[$1] += $3 } }
    function q(s, p) { return ms[s, int((k[s] - 1) * p + 0.5) + 1] }
    END {
      for (s in n) printf "%-18s %7.2f %7.2f %7.2f %7.2f %7.2f %3d/%d\n", s, k[s] ? sum[s] / k[s] : "nan",
        q(s, 0.5), q(s, 0.9), q(s, 0.99), q(s, 1), lost[s], n[s]
    }' | sort
} >"$out/first-contact-summary.txt"
cat "$out/first-contact-summary.txt"

gnuplot <<EOF
set terminal svg size 760,460 dynamic enhanced font "sans,13" background "white"
set datafile separator "\t"
set grid
set key bottom right

# (a) Tunnel establishment delay: CDF of the first ping's round trip.
data = "$out/first-contact.tsv"
set output "$out/first-contact-cdf.svg"
# Each system's answered round trips, and its number of trials (lost
# pings count in the denominator: the CDF then stays below 1).
systems = "lispguard-site lispguard-mobile nebula"
array n[3]
do for [k = 1:3] {
  s = word(systems, k)
  eval sprintf("set table \$rtt%d", k)
  plot data every ::1 using 3 with table if (strcol(1) eq s && column(4) == 0)
  unset table
}
do for [k = 1:3] {
  s = word(systems, k)
  stats data using (strcol(1) eq s ? 1 : 0) nooutput
  n[k] = STATS_sum
}
# The x range holds every trial and the paper's mean.
stats data using 3 nooutput
set title "First ping between cold nodes: round trip ($trials trials each)"
set xlabel "first ping round trip (ms, log scale)"
set ylabel "fraction of trials"
set logscale x
set yrange [0:1.02]
set xrange [(STATS_min < 1 ? STATS_min : 1) / 1.2 : (STATS_max > 40 ? STATS_max : 40) * 1.2]
paper = 32.6
set arrow from paper, graph 0 to paper, graph 1 nohead dashtype 2 linecolor "gray40"
set label "OOR + WireGuard, mean\n(ICCCN 2021): 32.6 ms" at paper / 1.08, graph 0.6 right textcolor "gray30"
plot \$rtt1 using 1:(1.0 / n[1]) smooth cumulative with steps linewidth 2 title "lispguard, site to site", \
     \$rtt2 using 1:(1.0 / n[2]) smooth cumulative with steps linewidth 2 title "lispguard, mobile to mobile", \
     \$rtt3 using 1:(1.0 / n[3]) smooth cumulative with steps linewidth 2 title "Nebula 1.6.1, node to node"

# (b) Map-server response delay and replies/s vs registrations.
reset
set terminal svg size 760,460 dynamic enhanced font "sans,13" background "white"
set datafile separator "\t"
set grid
data = "$out/mapserver-load.tsv"
set output "$out/mapserver-load.svg"
set title "Map-server over loopback UDP vs registered EIDs"
set xlabel "registered EIDs (log scale)"
set logscale x
set format x "10^{%L}"
set ylabel "response delay (µs)"
set yrange [0:*]
set y2label "replies/s"
set y2range [0:*]
set y2tics
set ytics nomirror
set key below maxrows 2
# One request in flight per client (in_flight 2): the delay without
# queueing; 2 threads and 64 in flight: the server saturated.
set table \$delay
plot data every ::1 using 2:7:8:9 with table if (column(4) == 2)
set table \$saturated
plot data every ::1 using 2:5 with table if (column(3) == 2 && column(4) == 64)
unset table
plot \$delay using 1:3 with linespoints linewidth 2 title "response delay, p50", \
     \$delay using 1:2 with linespoints linewidth 2 title "response delay, mean", \
     \$delay using 1:4 with linespoints linewidth 2 title "response delay, p99", \
     \$saturated using 1:2 axes x1y2 with linespoints linewidth 2 dashtype 2 title "replies/s, saturated (right axis)"
EOF
echo "plots: $out/first-contact-cdf.svg $out/mapserver-load.svg"

if [ -f "$out/throughput.tsv" ]; then
gnuplot <<EOF
set terminal svg size 760,460 dynamic enhanced font "sans,13" background "white"
set datafile separator "\t"
data = "$out/throughput.tsv"
set output "$out/throughput.svg"
# (c) Throughput through the overlays, once set up. The underlay without a
# tunnel (the lab's ceiling, ~30 times more) is in the table.
set table \$overlays
plot data every ::1 using (strcol(1)):2:4 with table if (strcol(1) ne "underlay")
unset table
set title "iperf3 through the lab once the tunnel is up (receiver)"
set ylabel "Mbit/s"
set yrange [0:*]
set grid ytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left
plot \$overlays using 2:xtic(1) title "TCP", '' using 3 title "UDP, sender unlimited"
EOF
echo "plot: $out/throughput.svg"
gnuplot <<EOF
set terminal svg size 760,460 dynamic enhanced font "sans,13" background "white"
set datafile separator "\t"
set grid
data = "$out/handover.tsv"
set output "$out/handover-cdf.svg"
# (d) Handover delay: CDF of the time without replies per kind of move
# (lost handovers count in the denominator: the CDF then stays below 1).
kinds = "single double single-mbb double-mbb"
array n[4]
do for [k = 1:4] {
  s = word(kinds, k)
  eval sprintf("set table \$gap%d", k)
  plot data every ::1 using 3 with table if (strcol(1) eq s && column(4) == 0)
  unset table
  stats data using (strcol(1) eq s ? 1 : 0) nooutput
  n[k] = STATS_sum
}
set title "Time without replies while mobile nodes move (10 probes per ms)"
set xlabel "longest time without replies (ms, log scale)"
set ylabel "fraction of handovers"
set logscale x
set xrange [1:20000]
set yrange [0:1.02]
set key at graph 0.98, graph 0.45 right
# The paper's figures (ICCCN 2021): ~1 s for WireGuard, 8-10 s for plain LISP.
set object 1 rectangle from 8000, graph 0 to 10000, graph 1 fillcolor "gray85" fillstyle solid noborder behind
set arrow from 1000, graph 0 to 1000, graph 1 nohead dashtype 2 linecolor "gray40"
set label "OOR + WireGuard,\npaper: about 1 s" at 900, graph 0.9 right textcolor "gray30"
set label "plain LISP,\npaper: 8-10 s" at 7500, graph 0.9 right textcolor "gray30"
plot \$gap1 using 1:(1.0 / n[1]) smooth cumulative with steps linewidth 2 title "one node moves, break before make", \
     \$gap2 using 1:(1.0 / n[2]) smooth cumulative with steps linewidth 2 title "double jump, break before make", \
     \$gap3 using 1:(1.0 / n[3]) smooth cumulative with steps linewidth 2 title "one node moves, make before break", \
     \$gap4 using 1:(1.0 / n[4]) smooth cumulative with steps linewidth 2 title "double jump, make before break"
EOF
echo "plot: $out/handover-cdf.svg"
fi

if [ -f "$out/memory.tsv" ]; then
gnuplot <<EOF
set terminal svg size 760,460 dynamic enhanced font "sans,13" background "white"
set datafile separator "\t"
set grid
data = "$out/memory.tsv"
set output "$out/memory.svg"
# (e) Resident memory by number of peers. 0 peers is drawn at 1 on the
# log axis, labelled 0.
set title "Resident memory of a mobile node's processes by its number of peers"
set xlabel "peers (log scale)"
set ylabel "resident memory (MiB, log scale)"
set logscale xy
set xtics ("0" 1, "10" 10, "100" 100, "1000" 1000)
set xrange [0.8:1300]
set key top left
x(p) = p == 0 ? 1 : p
plot data every ::1 using (x(\$1)):(\$4 / 1024) with linespoints linewidth 2 title "wireguard-go, RSS", \
     data every ::1 using (x(\$1)):(\$2 / 1024) with linespoints linewidth 2 title "lispguard agent, RSS", \
     data every ::1 using (x(\$1)):(\$3 / 1024) with linespoints linewidth 2 dashtype 2 title "lispguard agent, peak (VmHWM)"
EOF
echo "plot: $out/memory.svg"
fi

[ -f "$out/topologies.tsv" ] || exit 0
# First ping per topology: quantiles (nearest rank) over the answered
# pings, lost ones, and how many went through the relay.
{
  printf "%-15s %8s %8s %8s %6s %8s\n" "first ping (ms)" p50 p99 max lost relayed
  tail -n +2 "$out/topologies.tsv" | sort -t "$(printf '\t')" -k1,1 -k3,3g | awk -F '\t' '
    { n[$1]++; if ($5 == "relay") relayed[$1]++
      if ($4 == 1) lost[$1]++; else ms[$1, ++k[$1]] = $3 }
    function q(s, p) { return ms[s, int((k[s] - 1) * p + 0.5) + 1] }
    END {
      for (s in n) printf "%-15s %8.2f %8.2f %8.2f %3d/%d %5d/%d\n", s, q(s, 0.5), q(s, 0.99), q(s, 1),
        lost[s], n[s], relayed[s], n[s]
    }' | sort
} >"$out/topologies-summary.txt"
cat "$out/topologies-summary.txt"
gnuplot <<EOF
set terminal svg size 760,460 dynamic enhanced font "sans,13" background "white"
set datafile separator "\t"
set grid
set key top left
data = "$out/topologies.tsv"
set output "$out/topologies-cdf.svg"
# (d) First contact per topology: CDF of the first ping's round trip; lost
# pings count in the denominator.
topologies = "plain nat ipv6 nat-random blocked"
array n[5]
do for [k = 1:5] {
  t = word(topologies, k)
  eval sprintf("set table \$rtt%d", k)
  plot data every ::1 using 3 with table if (strcol(1) eq t && column(4) == 0)
  unset table
  stats data using (strcol(1) eq t ? 1 : 0) nooutput
  n[k] = STATS_sum
}
stats data using 3 nooutput
set title "First ping between cold sites, per topology"
set xlabel "first ping round trip (ms, log scale)"
set ylabel "fraction of trials"
set logscale x
set yrange [0:1.02]
set xrange [(STATS_min < 1 ? STATS_min : 1) / 1.2 : STATS_max * 1.5]
plot \$rtt1 using 1:(1.0 / n[1]) smooth cumulative with steps linewidth 2 title "plain sites", \
     \$rtt2 using 1:(1.0 / n[2]) smooth cumulative with steps linewidth 2 title "both behind NATs (direct)", \
     \$rtt3 using 1:(1.0 / n[3]) smooth cumulative with steps linewidth 2 title "IPv6 underlay and EIDs", \
     \$rtt4 using 1:(1.0 / n[4]) smooth cumulative with steps linewidth 2 title "both behind port-changing NATs (relayed)", \
     \$rtt5 using 1:(1.0 / n[5]) smooth cumulative with steps linewidth 2 title "direct UDP dropped (relayed after about 1 s)"
EOF
echo "plot: $out/topologies-cdf.svg"

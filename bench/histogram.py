#!/usr/bin/env python3
"""bench/histogram.py - one histogram of tutti's --metrics (Prometheus text) between two scrapes.

As a module (bench/jam-join.sh): between(start_text, end_text, name) gives the cumulative buckets counted
between the scrapes, [(upper bound in s, count)], and quantile / total / above read them.
As a command (bench/jam-latency.sh):
    histogram.py START END NAME Q [Q ...]   START and END are files of scraped text ("-": standard input);
                                            prints the quantiles as bucket bounds, "<=0.10/<=0.20" (ms)
"""
import sys


def buckets(text, name):
    """{upper bound in s: cumulative count} of histogram `name` in one scrape."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket"):
            le = line.split('le="')[1].split('"')[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
    return out


def between(start_text, end_text, name):
    """The cumulative buckets of `name` counted between two scrapes, by upper bound."""
    start, end = buckets(start_text, name), buckets(end_text, name)
    return sorted((le, count - start.get(le, 0)) for le, count in end.items())


def total(counted):
    return counted[-1][1] if counted else 0


def quantile(counted, p):
    """The bucket bound (ms) that quantile `p` falls under: "<=1.25", ">5" in the last bucket, "-" if empty."""
    for le, count in counted:
        if total(counted) and count >= p * total(counted):
            return ">5" if le == float("inf") else "<=%.2f" % (le * 1e3)
    return "-"


def above(counted, bound):
    """How many observations fell above `bound` (s, a bucket bound)."""
    return int(total(counted) - max((c for le, c in counted if le <= bound), default=0))


def read(path):
    return sys.stdin.read() if path == "-" else open(path).read()


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit("usage: histogram.py START END NAME Q [Q ...]")
    counted = between(read(sys.argv[1]), read(sys.argv[2]), sys.argv[3])
    print("/".join(quantile(counted, float(q)) for q in sys.argv[4:]))

"""The result parser of make test-lava refuses what must not pass: malformed log lines,
results without a case or result, missing or duplicated cases, a job LAVA did not finish,
failures in a healthy run, and a faulted run whose lost vector did not fail.
Run: /usr/bin/python3 -m unittest discover -s lava/ci"""

import json
import unittest

from lava_ci import ResultError, check, read_results, render_job


def line(lvl, msg):
    # lava-run prints one mapping per line; JSON is a YAML subset, as its own lines are.
    return json.dumps({"dt": "2026-12-03T16:00:00", "lvl": lvl, "msg": msg})


def case(name, result, suite="0_nicqual-vfio", **extra):
    return line("results", dict({"definition": suite, "case": name, "result": result}, **extra))


JOB_PASS = line("results", {"definition": "lava", "case": "job", "result": "pass"})
EXPECTED = ["vector-RxQ0", "vector-TxQ0", "msix-table-1"]


def log(*lines):
    return [line("info", "start"), line("target", "[ 0.0] Linux version 6.1")] + list(lines)


class Parser(unittest.TestCase):
    def healthy(self):
        return log(
            case("vector-RxQ0", "pass"),
            case("vector-RxQ0.latency_max", "pass", measurement=50.0, units="us"),
            case("vector-TxQ0", "pass"),
            case("msix-table-1", "skip"),
            case("nicqual-verdict", "pass"),
            JOB_PASS,
        )

    def test_a_healthy_run_passes_and_is_summarised(self):
        s = check(read_results(self.healthy()), "nicqual-vfio", EXPECTED)
        self.assertIn("3 checks reported (2 pass, 0 fail, 1 skip), 1 measurements", s)

    def test_malformed_lines_are_refused(self):
        for bad in ["{not: [yaml", "just text", "- a list", line("results", "not a mapping")]:
            with self.assertRaises(ResultError, msg=bad):
                read_results(self.healthy() + [bad])
        with self.assertRaisesRegex(ResultError, "without case or result"):
            read_results(log(line("results", {"definition": "x", "result": "pass"})))

    def test_a_missing_case_is_named(self):
        lines = [l for l in self.healthy() if '"vector-TxQ0"' not in l]
        with self.assertRaisesRegex(ResultError, "not reported: vector-TxQ0"):
            check(read_results(lines), "nicqual-vfio", EXPECTED)

    def test_no_results_or_no_job_result_is_refused(self):
        with self.assertRaisesRegex(ResultError, "did not finish"):
            check(read_results(self.healthy()[:-1]), "nicqual-vfio", EXPECTED)
        with self.assertRaisesRegex(ResultError, "no results at all"):
            check(read_results(log(JOB_PASS)), "nicqual-vfio", EXPECTED)
        with self.assertRaisesRegex(ResultError, "empty"):
            check(read_results(self.healthy()), "nicqual-vfio", [])
        failed_job = line("results", {"definition": "lava", "case": "job", "result": "fail", "error_msg": "timed out"})
        with self.assertRaisesRegex(ResultError, "timed out"):
            check(read_results(self.healthy()[:-1] + [failed_job]), "nicqual-vfio", EXPECTED)

    def test_duplicates_unknown_cases_and_odd_results_are_refused(self):
        with self.assertRaisesRegex(ResultError, "twice"):
            check(read_results(self.healthy() + [case("vector-TxQ0", "pass")]), "nicqual-vfio", EXPECTED)
        with self.assertRaisesRegex(ResultError, "unexpected case"):
            check(read_results(self.healthy() + [case("made-up", "pass")]), "nicqual-vfio", EXPECTED)
        odd = [l.replace('"skip"', '"unknown"') for l in self.healthy()]
        with self.assertRaisesRegex(ResultError, "result 'unknown'"):
            check(read_results(odd), "nicqual-vfio", EXPECTED)

    def test_a_failure_fails_a_healthy_run(self):
        lines = [l.replace('"vector-TxQ0", "result": "pass"', '"vector-TxQ0", "result": "fail"') for l in self.healthy()]
        with self.assertRaisesRegex(ResultError, "1 case.s. failed: vector-TxQ0"):
            check(read_results(lines), "nicqual-vfio", EXPECTED)

    def test_a_faulted_run_must_fail_where_required(self):
        suite = "1_nicqual-lost-vector"
        faulted = log(
            case("vector-RxQ0", "pass", suite),
            case("vector-TxQ0", "fail", suite),
            case("msix-table-1", "fail", suite),
            case("nicqual-verdict", "fail", suite),
            JOB_PASS,
        )
        s = check(read_results(faulted), "nicqual-lost-vector", EXPECTED, ["vector-TxQ0", "msix-table-1"], ["vector-RxQ0"])
        self.assertIn("failing: msix-table-1 nicqual-verdict vector-TxQ0", s)
        with self.assertRaisesRegex(ResultError, "vector-RxQ0 must fail, got pass"):
            check(read_results(faulted), "nicqual-lost-vector", EXPECTED, ["vector-RxQ0"])
        with self.assertRaisesRegex(ResultError, "vector-TxQ0 must pass, got fail"):
            check(read_results(faulted), "nicqual-lost-vector", EXPECTED, ["msix-table-1"], ["vector-TxQ0"])
        # The other suite's results never stand in for this one's.
        with self.assertRaisesRegex(ResultError, "no results at all"):
            check(read_results(faulted), "nicqual-vfio", EXPECTED)


class Render(unittest.TestCase):
    def test_placeholders_must_all_be_filled(self):
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write('url: "@KERNEL_URL@"\nother: "@RAMDISK_URL@"\n')
            f.flush()
            self.assertIn("file:///k", render_job(f.name, {"KERNEL_URL": "file:///k", "RAMDISK_URL": "file:///r"}))
            with self.assertRaisesRegex(ResultError, "@RAMDISK_URL@"):
                render_job(f.name, {"KERNEL_URL": "file:///k"})


if __name__ == "__main__":
    unittest.main()

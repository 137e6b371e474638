#!/usr/bin/env python3
"""Unit tests of tools/labctl.py's pure parts: parameters, criteria, tables, exit codes, SSE.
   python3 -m unittest discover -s tests/cli -p 'test_*.py'"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import labctl  # noqa: E402

E005_PARAMS = [
    {"name": "events", "type": "integer", "min": 1, "max": 100000},
    {"name": "ratio", "type": "number"},
    {"name": "flag", "type": "boolean"},
    {"name": "dedup", "type": "enum", "choices": ["processed_event", "none"]},
]


class Params(unittest.TestCase):
    def test_name_value_pairs(self):
        self.assertEqual(labctl.parse_param_args(["events=1000", "dedup=none", "x=a=b"]),
                         {"events": "1000", "dedup": "none", "x": "a=b"})
        self.assertEqual(labctl.parse_param_args(None), {})

    def test_bad_syntax_is_refused(self):
        for bad in ["events", "=5", "events=", "9x=1", "a b=1"]:
            with self.assertRaises(labctl.CliError, msg=bad) as ctx:
                labctl.parse_param_args([bad])
            self.assertIn("NAME=VALUE", str(ctx.exception))

    def test_twice_is_refused(self):
        with self.assertRaises(labctl.CliError):
            labctl.parse_param_args(["events=1", "events=2"])

    def test_values_take_the_catalog_type(self):
        raw = {"events": "1_000", "ratio": "0.5", "flag": "off", "dedup": "none"}
        self.assertEqual(labctl.coerce_params(raw, E005_PARAMS, "E-005"),
                         {"events": 1000, "ratio": 0.5, "flag": False, "dedup": "none"})
        self.assertIs(type(labctl.coerce_params({"ratio": "3"}, E005_PARAMS, "E-005")["ratio"]), int)

    def test_wrong_type_and_unknown_name(self):
        with self.assertRaisesRegex(labctl.CliError, "events is an integer"):
            labctl.coerce_params({"events": "many"}, E005_PARAMS, "E-005")
        with self.assertRaisesRegex(labctl.CliError, "a boolean"):
            labctl.coerce_params({"flag": "maybe"}, E005_PARAMS, "E-005")
        with self.assertRaisesRegex(labctl.CliError, "E-005 has no parameter 'evnts'.*events"):
            labctl.coerce_params({"evnts": "1"}, E005_PARAMS, "E-005")

    def test_modes(self):
        self.assertEqual(labctl.parse_modes(["failure,success", "failure"]), ["failure", "success"])
        with self.assertRaises(labctl.CliError):
            labctl.parse_modes(["failure,"])


class Criteria(unittest.TestCase):
    def test_parse(self):
        c = labctl.parse_criterion("failure.failed_restricted > 0")
        self.assertEqual((c["mode"], c["metric"], c["op"], c["value"]),
                         ("failure", "failed_restricted", ">", 0.0))
        c = labctl.parse_criterion("failure.db_reads >= 10 x success.db_reads")
        self.assertEqual((c["op"], c["factor"], c["rhs_mode"], c["rhs_metric"]),
                         (">=", 10.0, "success", "db_reads"))
        c = labctl.parse_criterion("success.final_applied == success.total")
        self.assertEqual((c["factor"], c["rhs_metric"]), (1.0, "total"))
        self.assertIsNone(labctl.parse_criterion("something else"))

    def test_holds(self):
        ev = {"success": {"metrics": {"final_applied": 300.0, "total": 300.0, "lost": 2.0}}}
        self.assertTrue(labctl.criterion_holds(
            labctl.parse_criterion("success.final_applied == success.total"), ev))
        self.assertFalse(labctl.criterion_holds(labctl.parse_criterion("success.lost == 0"), ev))
        self.assertIsNone(labctl.criterion_holds(labctl.parse_criterion("failure.lost > 0"), ev))
        self.assertTrue(labctl.criterion_holds(
            labctl.parse_criterion("success.total > 100 x success.lost"), ev))


RUN = {
    "id": "r1", "experiment": "E-049", "state": "completed", "verdict": "confirmed",
    "verdict_reason": "failure.failed_restricted > 0 (observed 3); success.failed_restricted == 0 (observed 0)",
    "evidence": {
        "failure": {"metrics": {"failed_restricted": 3.0, "gate_matches": 1.0, "zeta": 0.125}},
        "success": {"metrics": {"failed_restricted": 0.0, "gate_matches": 1.0}},
    },
}
CRITERIA = ["failure.failed_restricted > 0", "success.failed_restricted == 0"]


class Tables(unittest.TestCase):
    def test_format_table_aligns(self):
        lines = labctl.format_table(["metric", "value"], [["a", "1"], ["long_name", "2000"]],
                                    ["<", ">"])
        self.assertEqual(lines, ["metric     value", "---------  -----",
                                 "a              1", "long_name   2000"])

    def test_numbers(self):
        self.assertEqual(labctl.format_number(3.0), "3")
        self.assertEqual(labctl.format_number(0.133665726), "0.133666")
        self.assertEqual(labctl.format_number(None), "—")

    def test_mode_tables_put_criteria_first_and_mark_them(self):
        tables = dict(labctl.mode_tables(RUN, CRITERIA))
        self.assertEqual(list(tables), ["failure", "success"])
        failure = tables["failure"]
        self.assertTrue(failure[2].startswith("failed_restricted"), failure)
        self.assertRegex(failure[2], r"failed_restricted\s+3\s+> 0\s+✓")
        self.assertIn("0.125", "\n".join(failure))
        self.assertRegex("\n".join(tables["success"]), r"failed_restricted\s+0\s+== 0\s+✓")

    def test_mode_tables_limit_and_repetitions(self):
        run = dict(RUN, evidence={"m": {"metrics": {f"n{i:02d}": i for i in range(30)}}})
        lines = dict(labctl.mode_tables(run, ["m.n29 > 1"], max_rows=5))["m"]
        self.assertRegex(lines[2], r"^n29\s+29\s+> 1")
        self.assertEqual(lines[-1], "(+25 more numbers: --all-metrics shows them)")
        self.assertEqual(len(dict(labctl.mode_tables(run, [], all_metrics=True))["m"]), 32)
        reps = dict(RUN, repetitions=[
            {"index": 0, "verdict": "confirmed", "evidence": RUN["evidence"]},
            {"index": 1, "verdict": "refuted", "evidence": {
                "failure": {"metrics": {"failed_restricted": 0.0}},
                "success": {"metrics": {"failed_restricted": 0.0}}}}])
        failure = dict(labctl.mode_tables(reps, CRITERIA))["failure"]
        self.assertRegex(failure[0], r"metric\s+#1\s+#2\s+criterion\s+held")
        self.assertRegex(failure[2], r"failed_restricted\s+3\s+0\s+> 0\s+1/2 ✗")


class ExitCodes(unittest.TestCase):
    def test_verdicts(self):
        self.assertEqual(labctl.run_exit_code(RUN, "confirmed")[0], 0)
        self.assertEqual(labctl.run_exit_code(RUN, "refuted")[0], 1)
        self.assertEqual(labctl.run_exit_code(dict(RUN, state="failed"), "confirmed")[0], 2)
        self.assertEqual(labctl.run_exit_code(dict(RUN, state="cancelled"), "inconclusive")[0], 2)

    def test_every_repetition_must_match(self):
        run = dict(RUN, verdict="refuted", repetitions=[{"verdict": "refuted"},
                                                        {"verdict": "confirmed"}])
        code, why = labctl.run_exit_code(run, "refuted")
        self.assertEqual(code, 1)
        self.assertIn("1 of 2", why)
        run["repetitions"][1]["verdict"] = "refuted"
        self.assertEqual(labctl.run_exit_code(run, "refuted")[0], 0)


class Steps(unittest.TestCase):
    def test_split(self):
        modes = {"failure", "success"}
        self.assertEqual(labctl.split_step("#2 failure: started", modes), ("#2 failure", "started"))
        self.assertEqual(labctl.split_step("failure: failure: gate saw", modes), ("failure", "gate saw"))
        self.assertEqual(labctl.split_step("preflight: checking 1", modes), ("", "preflight: checking 1"))

    def test_sse(self):
        text = ["id: 1\n", "event: step\n", 'data: {"seq":1}\n', "\n", ": keep-alive\n", "\n",
                "event: end\n", "data: {}\n", "\n"]
        self.assertEqual(list(labctl.sse_events(text)),
                         [("step", '{"seq":1}', "1"), ("end", "{}", None)])


if __name__ == "__main__":
    unittest.main()

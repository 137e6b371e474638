#include "domain/run_request.h"

#include <gtest/gtest.h>

namespace lab::domain {
namespace {

const ExperimentSpec& E002() { return *FindExperiment("E-002"); }

// An empty body runs every mode with default parameters, once.
TEST(RunRequest, EmptyBodyMeansDefaults) {
  std::vector<FieldError> errors;
  auto r = ValidateRunRequest(E002(), {}, errors);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->modes, (std::vector<std::string>{"failure", "success"}));
  EXPECT_EQ(GetInt(r->params, "events"), 500);
  EXPECT_EQ(r->repeat, 1);
  EXPECT_EQ(r->timeout_seconds, E002().default_timeout_seconds);
}

// Modes come back in catalog order; unknown, duplicate and non-string modes are named.
TEST(RunRequest, Modes) {
  std::vector<FieldError> errors;
  RunRequestInput in;
  in.modes = std::vector<RawValue>{std::string("success"), std::string("failure")};
  auto r = ValidateRunRequest(E002(), in, errors);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->modes, (std::vector<std::string>{"failure", "success"}));

  in.modes = std::vector<RawValue>{std::string("succes"), std::string("failure"),
                                   std::string("failure"), std::int64_t{3}};
  EXPECT_FALSE(ValidateRunRequest(E002(), in, errors).ok());
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].field, "modes[0]");
  EXPECT_EQ(errors[1].field, "modes[2]");
  EXPECT_EQ(errors[2].field, "modes[3]");

  errors.clear();
  in.modes = std::vector<RawValue>{};
  EXPECT_FALSE(ValidateRunRequest(E002(), in, errors).ok());
  errors.clear();
  RunRequestInput scalar;
  scalar.modes_scalar = RawValue{std::string("failure")};
  EXPECT_FALSE(ValidateRunRequest(E002(), scalar, errors).ok());
  EXPECT_EQ(errors.at(0).field, "modes");
}

// repeat and timeout_seconds at and beyond their bounds.
TEST(RunRequest, RepeatAndTimeoutBounds) {
  auto check = [](std::optional<RawValue> repeat, std::optional<RawValue> timeout) {
    RunRequestInput in;
    in.repeat = repeat;
    in.timeout_seconds = timeout;
    std::vector<FieldError> errors;
    return ValidateRunRequest(E002(), in, errors).ok();
  };
  EXPECT_TRUE(check(RawValue{std::int64_t{1}}, std::nullopt));
  EXPECT_TRUE(check(RawValue{std::int64_t{kMaxRepeat}}, std::nullopt));
  EXPECT_FALSE(check(RawValue{std::int64_t{0}}, std::nullopt));
  EXPECT_FALSE(check(RawValue{std::int64_t{kMaxRepeat + 1}}, std::nullopt));
  EXPECT_FALSE(check(RawValue{std::string("2")}, std::nullopt));
  EXPECT_TRUE(check(std::nullopt, RawValue{std::int64_t{kMinTimeoutSeconds}}));
  EXPECT_TRUE(check(std::nullopt, RawValue{std::int64_t{kMaxTimeoutSeconds}}));
  EXPECT_FALSE(check(std::nullopt, RawValue{std::int64_t{kMinTimeoutSeconds - 1}}));
  EXPECT_FALSE(check(std::nullopt, RawValue{std::int64_t{kMaxTimeoutSeconds + 1}}));
}

// The default timeout is one run's, so a repeated run gets it once per repetition (bounded);
// a timeout the request sets is kept as it is.
TEST(RunRequest, RepeatScalesTheDefaultTimeout) {
  auto timeout = [](std::int64_t repeat, std::optional<std::int64_t> asked) {
    RunRequestInput in;
    in.repeat = RawValue{repeat};
    if (asked) in.timeout_seconds = RawValue{*asked};
    std::vector<FieldError> errors;
    auto r = ValidateRunRequest(E002(), in, errors);
    return r.ok() ? r->timeout_seconds : -1;
  };
  const int one = E002().default_timeout_seconds;
  EXPECT_EQ(timeout(1, std::nullopt), one);
  EXPECT_EQ(timeout(5, std::nullopt), std::min(kMaxTimeoutSeconds, 5 * one));
  EXPECT_EQ(timeout(kMaxRepeat, std::nullopt), std::min(kMaxTimeoutSeconds, kMaxRepeat * one));
  EXPECT_EQ(timeout(5, 60), 60);
}

// Note, keep_artifacts and unknown fields.
TEST(RunRequest, OtherFields) {
  RunRequestInput in;
  in.note = RawValue{std::string(kMaxNoteLength + 1, 'n')};
  in.keep_artifacts = RawValue{std::string("yes")};
  in.unknown_fields = {"mode"};
  std::vector<FieldError> errors;
  EXPECT_FALSE(ValidateRunRequest(E002(), in, errors).ok());
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].field, "mode");
  EXPECT_EQ(errors[1].field, "note");
  EXPECT_EQ(errors[2].field, "keep_artifacts");

  RunRequestInput good;
  good.note = RawValue{std::string("before the fix")};
  good.keep_artifacts = RawValue{true};
  errors.clear();
  auto r = ValidateRunRequest(E002(), good, errors);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->keep_artifacts);
  EXPECT_EQ(r->note, "before the fix");
}

}  // namespace
}  // namespace lab::domain

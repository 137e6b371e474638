#include "domain/parameters.h"

#include <gtest/gtest.h>

namespace lab::domain {
namespace {

std::vector<ParameterSpec> Specs() {
  return {
      {"events", ParamType::kInteger, std::int64_t{100}, 1, 1000, "events", "", {}},
      {"ratio", ParamType::kNumber, 0.5, 0.0, 1.0, "", "", {}},
      {"verbose", ParamType::kBoolean, false, std::nullopt, std::nullopt, "", "", {}},
      {"mode",
       ParamType::kEnum,
       std::string("del"),
       std::nullopt,
       std::nullopt,
       "",
       "",
       {"del", "versioned"}},
  };
}

Result<ParamMap> Validate(const std::map<std::string, RawValue>& given,
                          std::vector<FieldError>& errors) {
  return ValidateParams(Specs(), given, errors);
}

// Nothing given: every parameter takes its default.
TEST(Parameters, DefaultsFillIn) {
  std::vector<FieldError> errors;
  auto params = Validate({}, errors);
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(GetInt(*params, "events"), 100);
  EXPECT_DOUBLE_EQ(GetNumber(*params, "ratio"), 0.5);
  EXPECT_FALSE(GetBool(*params, "verbose"));
  EXPECT_EQ(GetString(*params, "mode"), "del");
}

// Integer bounds are inclusive: min and max pass, one beyond fails with the field named.
TEST(Parameters, IntegerBoundsAtAndBeyond) {
  for (std::int64_t ok_value : {std::int64_t{1}, std::int64_t{1000}}) {
    std::vector<FieldError> errors;
    auto params = Validate({{"events", ok_value}}, errors);
    ASSERT_TRUE(params.ok());
    EXPECT_EQ(GetInt(*params, "events"), ok_value);
  }
  for (std::int64_t bad : {std::int64_t{0}, std::int64_t{1001}, std::int64_t{-5}}) {
    std::vector<FieldError> errors;
    EXPECT_FALSE(Validate({{"events", bad}}, errors).ok());
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].field, "params.events");
    EXPECT_NE(errors[0].message.find("[1, 1000]"), std::string::npos) << errors[0].message;
  }
}

// A whole-valued double is an integer (JSON 5.0); a fraction or a string is not.
TEST(Parameters, IntegerTypeChecks) {
  std::vector<FieldError> errors;
  auto params = Validate({{"events", 5.0}}, errors);
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(GetInt(*params, "events"), 5);
  for (RawValue bad : {RawValue{5.5}, RawValue{std::string("5")}, RawValue{true},
                       RawValue{RawUnsupported{"array"}}}) {
    std::vector<FieldError> e;
    EXPECT_FALSE(Validate({{"events", bad}}, e).ok());
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].message.find("integer"), std::string::npos);
  }
}

// Number bounds, and integers accepted as numbers.
TEST(Parameters, NumberBounds) {
  std::vector<FieldError> errors;
  EXPECT_TRUE(Validate({{"ratio", std::int64_t{1}}}, errors).ok());
  EXPECT_TRUE(Validate({{"ratio", 0.0}}, errors).ok());
  EXPECT_FALSE(Validate({{"ratio", 1.0001}}, errors).ok());
  EXPECT_FALSE(Validate({{"ratio", -0.1}}, errors).ok());
}

// Booleans and enums accept only their own kinds of value.
TEST(Parameters, BooleanAndEnum) {
  std::vector<FieldError> errors;
  EXPECT_TRUE(Validate({{"verbose", true}, {"mode", std::string("versioned")}}, errors).ok());
  EXPECT_FALSE(Validate({{"verbose", std::int64_t{1}}}, errors).ok());
  errors.clear();
  EXPECT_FALSE(Validate({{"mode", std::string("none")}}, errors).ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("del, versioned"), std::string::npos);
}

// Unknown parameters are named, and all errors come back together.
TEST(Parameters, UnknownAndMultipleErrors) {
  std::vector<FieldError> errors;
  EXPECT_FALSE(Validate({{"evnts", std::int64_t{3}}, {"ratio", 7.0}}, errors).ok());
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].field, "params.evnts");
  EXPECT_NE(errors[0].message.find("known: events"), std::string::npos);
  EXPECT_EQ(errors[1].field, "params.ratio");
}

// null means "use the default".
TEST(Parameters, NullMeansDefault) {
  std::vector<FieldError> errors;
  auto params = Validate({{"events", RawNull{}}}, errors);
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(GetInt(*params, "events"), 100);
}

}  // namespace
}  // namespace lab::domain

// Redis experiments through the API (being written).
#include <gtest/gtest.h>

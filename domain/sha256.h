// SHA-256 (FIPS 180-4), so the audit chain's hashing lives in the domain with no library.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace lab::domain {

std::array<std::uint8_t, 32> Sha256(std::string_view data);
std::string Sha256Hex(std::string_view data);

}  // namespace lab::domain

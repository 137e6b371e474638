// The static web UI under `web_root`: files by path (never outside it, never hidden ones), and
// index.html for the single-page UI's own routes under /ui.
#pragma once

#include <string>

#include "server/http/http_types.h"

namespace lab::server {

HttpResponse ServeStaticFile(const std::string& web_root, const std::string& path);

}  // namespace lab::server

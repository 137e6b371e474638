#include "server/http/static_files.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "server/http/problem.h"

namespace lab::server {
namespace {

std::string ContentTypeFor(const std::filesystem::path& p) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json; charset=utf-8"},
      {".woff2", "font/woff2"}};
  auto it = kTypes.find(p.extension().string());
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream in(path);
  std::string part;
  while (std::getline(in, part, '/')) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

}  // namespace

HttpResponse ServeStaticFile(const std::string& web_root, const std::string& path) {
  namespace fs = std::filesystem;
  if (web_root.empty()) return Problem(404, "Not found", "no UI is configured");
  std::string relative = path;
  if (relative.rfind("/ui/", 0) == 0) relative = relative.substr(3);
  if (relative == "/ui") relative = "/";
  // No "..", no hidden files: the UI folder is all this serves.
  for (const auto& part : SplitPath(relative)) {
    if (part == ".." || part.front() == '.') return Problem(404, "Not found", "no file at " + path);
  }
  fs::path root = fs::path(web_root);
  fs::path file = root / fs::path(relative).relative_path();
  std::error_code ec;
  if (relative == "/" || fs::is_directory(file, ec)) file = root / "index.html";
  bool spa_route = path.rfind("/ui/", 0) == 0 || path == "/ui";
  if (!fs::is_regular_file(file, ec)) {
    if (!spa_route || fs::path(relative).has_extension())
      return Problem(404, "Not found", "no file at " + path);
    file = root / "index.html";  // client-side routes of the single-page UI
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return Problem(404, "Not found", "no file at " + path);
  std::ostringstream content;
  content << in.rdbuf();
  HttpResponse r;
  r.content_type = ContentTypeFor(file);
  r.body = content.str();
  r.AddHeader("Cache-Control", "no-cache");
  r.AddHeader("X-Content-Type-Options", "nosniff");
  return r;
}

}  // namespace lab::server

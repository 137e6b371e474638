#include "runners/registry/http_client.h"

#include <curl/curl.h>

#include <mutex>

#include "runners/common/c_handle.h"

namespace lab::runners::registry {
namespace {

size_t Append(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

}  // namespace

domain::Result<HttpResponse> HttpRequest(const std::string& method, const std::string& url,
                                         const std::string& body, const std::string& content_type,
                                         std::chrono::milliseconds timeout) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CHandle<CURL, curl_easy_cleanup> curl(curl_easy_init());
  if (!curl)
    return domain::MakeError(domain::ErrorCode::kResourceExhausted, "curl_easy_init failed");
  HttpResponse response;
  CHandle<curl_slist, curl_slist_free_all> headers;
  if (!content_type.empty()) {
    headers.reset(curl_slist_append(nullptr, ("Content-Type: " + content_type).c_str()));
  }
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
  if (headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  if (!body.empty() || method == "POST" || method == "PUT") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    return domain::MakeError(rc == CURLE_OPERATION_TIMEDOUT ? domain::ErrorCode::kTimeout
                                                            : domain::ErrorCode::kUnavailable,
                             method + " " + url + ": " + curl_easy_strerror(rc));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  double total = 0;
  curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &total);
  response.total_ms = total * 1000.0;
  return response;
}

}  // namespace lab::runners::registry

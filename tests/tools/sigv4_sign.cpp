// tensorinit_sigv4_sign: signs one request with io::SigV4Signer at a fixed time and prints what
// it signed, as JSON on stdout, so tests/integration/test_sigv4_botocore.py can compare it with
// botocore's signer. Credentials come from the environment through io::resolve_credentials
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), as they do in tensorinit.
//
//   tensorinit_sigv4_sign --time 20150830T123600Z [--region R] [--service S] [--no-content-sha256]
//       [--method GET] (--url URL | --s3 s3://bucket/prefix/ --key KEY [--endpoint E] [--path-style true|false])
//       [--header 'Name: value']...
//
// Output: {"url", "canonical_request", "string_to_sign", "authorization", "headers": [[name, value]...]}.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include "io/s3_location.hpp"
#include "io/sigv4.hpp"

namespace {

using namespace tensorinit;

int usage(const std::string& why) {
  std::cerr << "tensorinit_sigv4_sign: " << why << "\n";
  return 64;
}

std::optional<std::chrono::system_clock::time_point> parse_amz_date(const std::string& s) {
  std::tm tm{};
  const char* end = ::strptime(s.c_str(), "%Y%m%dT%H%M%SZ", &tm);
  if (!end || *end != '\0') return std::nullopt;
  return std::chrono::system_clock::from_time_t(::timegm(&tm));
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::chrono::system_clock::time_point> time;
  io::SigV4Options options;
  io::HttpRequest request;
  io::S3Config source;
  source.where = "tensorinit_sigv4_sign";
  std::string key;
  bool have_key = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--no-content-sha256") {
      options.content_sha256_header = false;
      continue;
    }
    if (i + 1 >= argc) return usage(std::string(arg) + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--time") {
      if (!(time = parse_amz_date(value))) return usage("--time wants YYYYMMDDTHHMMSSZ, got " + value);
    } else if (arg == "--region") {
      options.region = source.region = value;
    } else if (arg == "--service") {
      options.service = value;
    } else if (arg == "--method") {
      request.method = value;
    } else if (arg == "--url") {
      request.url = value;
    } else if (arg == "--s3") {
      source.url = value;
    } else if (arg == "--key") {
      key = value, have_key = true;
    } else if (arg == "--endpoint") {
      source.endpoint = value;
    } else if (arg == "--path-style") {
      source.path_style = value == "true";
    } else if (arg == "--header") {
      const size_t colon = value.find(':');
      if (colon == std::string::npos) return usage("--header wants 'Name: value', got " + value);
      request.headers.emplace_back(value.substr(0, colon), value.substr(colon + 1));
    } else {
      return usage("unknown argument " + std::string(arg));
    }
  }
  if (!time) return usage("--time is required");
  if (!source.url.empty()) {
    if (!have_key || !request.url.empty()) return usage("--s3 needs --key, and excludes --url");
    auto loc = io::parse_s3_location(source);
    if (!loc) return usage(loc.error().message);
    request.url = loc->object_url(key);
  }
  if (request.url.empty()) return usage("give --url or --s3 with --key");

  auto credentials = io::resolve_credentials(source);
  if (!credentials) return usage(credentials.error().message);
  const auto at = *time;
  io::SigV4Signer signer(std::move(*credentials), options, [at] { return at; });
  auto trace = signer.sign_traced(request);
  if (!trace) return usage(trace.error().message);

  nlohmann::json out = {{"url", request.url},
                        {"canonical_request", trace->canonical_request},
                        {"string_to_sign", trace->string_to_sign},
                        {"authorization", trace->authorization},
                        {"headers", request.headers}};
  std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}

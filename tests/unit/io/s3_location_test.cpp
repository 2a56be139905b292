// parse_s3_location and encode_s3_key: bucket and prefix from s3:// URLs, the addressing rules
// (path-style with an endpoint, virtual-hosted on AWS), and key encoding for awkward keys. The
// expected encodings follow SigV4's UriEncode byte by byte; tests/integration/test_sigv4_botocore.py
// checks the same URLs against the ones botocore's S3 client builds.
#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "io/s3_location.hpp"

namespace {

using namespace tensorinit;

io::S3Config s3(std::string url, std::string endpoint = "", std::string region = "",
                    std::optional<bool> path_style = std::nullopt) {
  io::S3Config s;
  s.url = std::move(url);
  s.endpoint = std::move(endpoint);
  s.region = std::move(region);
  s.path_style = path_style;
  s.where = "m.yaml:4:7";
  return s;
}

io::S3Location parsed(const io::S3Config& s) {
  auto loc = io::parse_s3_location(s);
  REQUIRE_MESSAGE(loc.has_value(), (loc ? "" : loc.error().message));
  return *loc;
}

std::string refused(const io::S3Config& s) {
  auto loc = io::parse_s3_location(s);
  REQUIRE_FALSE(loc.has_value());
  CHECK(loc.error().code == Code::bad_manifest);
  CHECK(loc.error().message.starts_with("m.yaml:4:7: "));
  return loc.error().message;
}

}  // namespace

TEST_CASE("s3: bucket and prefix from s3:// URLs; the prefix always ends in '/'") {
  CHECK(parsed(s3("s3://models")).prefix == "");
  CHECK(parsed(s3("s3://models/")).prefix == "");
  io::S3Location loc = parsed(s3("s3://models/llama/7b"));
  CHECK(loc.bucket == "models");
  CHECK(loc.prefix == "llama/7b/");
  CHECK(loc.key_of("model.safetensors") == "llama/7b/model.safetensors");
  // Taken literally, as the AWS CLI does: "%20" in an s3:// URL is three characters of the key.
  CHECK(parsed(s3("s3://models/a b/%20/")).prefix == "a b/%20/");
  CHECK(parsed(s3("s3://models//double/")).prefix == "/double/");
}

TEST_CASE("s3: AWS by default: regional endpoint, virtual-hosted, us-east-1") {
  io::S3Location loc = parsed(s3("s3://models/p/"));
  CHECK(loc.region == "us-east-1");
  CHECK_FALSE(loc.path_style);
  CHECK(loc.object_url("p/model.safetensors") == "https://models.s3.us-east-1.amazonaws.com/p/model.safetensors");
  CHECK(parsed(s3("s3://models/p/", "", "eu-west-1")).object_url("k") == "https://models.s3.eu-west-1.amazonaws.com/k");
  // Dots over TLS would miss the certificate's one-label wildcard, and '_' or upper case is no
  // host name: those buckets fall back to path-style when the manifest does not choose.
  CHECK(parsed(s3("s3://my.models/")).object_url("k") == "https://s3.us-east-1.amazonaws.com/my.models/k");
  CHECK(parsed(s3("s3://My_Models/")).object_url("k") == "https://s3.us-east-1.amazonaws.com/My_Models/k");
  CHECK(parsed(s3("s3://models/", "", "", true)).object_url("k") == "https://s3.us-east-1.amazonaws.com/models/k");
}

TEST_CASE("s3: an endpoint means path-style unless the manifest says otherwise") {
  io::S3Location minio = parsed(s3("s3://bucket/prefix/", "http://127.0.0.1:9000"));
  CHECK(minio.path_style);
  CHECK(minio.object_url("prefix/x") == "http://127.0.0.1:9000/bucket/prefix/x");
  CHECK(parsed(s3("s3://bucket/", "http://127.0.0.1:9000/")).object_url("x") == "http://127.0.0.1:9000/bucket/x");
  CHECK(parsed(s3("s3://bucket/", "https://gw.example/s3/", "", true)).object_url("x") == "https://gw.example/s3/bucket/x");
  // R2 and GCS style: virtual-hosted on request, the port and any base path kept.
  CHECK(parsed(s3("s3://bucket/", "https://acct.r2.cloudflarestorage.com", "auto", false)).object_url("x") ==
        "https://bucket.acct.r2.cloudflarestorage.com/x");
  CHECK(parsed(s3("s3://bucket/", "http://minio.local:9000", "", false)).object_url("x") == "http://bucket.minio.local:9000/x");
  CHECK(parsed(s3("s3://my.bucket/", "http://minio.local:9000", "", false)).object_url("x") == "http://my.bucket.minio.local:9000/x");
}

TEST_CASE("s3: object keys are percent-encoded once, every byte but unreserved and '/'") {
  CHECK(io::encode_s3_key("a b") == "a%20b");
  CHECK(io::encode_s3_key("k=v+w,x:y(z)") == "k%3Dv%2Bw%2Cx%3Ay%28z%29");
  CHECK(io::encode_s3_key("~user/-._") == "~user/-._");
  CHECK(io::encode_s3_key("modèle/重み.safetensors") == "mod%C3%A8le/%E9%87%8D%E3%81%BF.safetensors");
  CHECK(io::encode_s3_key("100%/?#&*") == "100%25/%3F%23%26%2A");
  CHECK(io::encode_s3_key("a//b/./c/../d") == "a//b/./c/../d");
  io::S3Location loc = parsed(s3("s3://bucket/my models (v2)/", "http://127.0.0.1:9000"));
  CHECK(loc.object_url(loc.key_of("shard=1+2.safetensors")) ==
        "http://127.0.0.1:9000/bucket/my%20models%20%28v2%29/shard%3D1%2B2.safetensors");
}

TEST_CASE("s3: malformed locations are manifest errors naming the entry") {
  CHECK(refused(s3("http://bucket/x")).find("does not start with s3://") != std::string::npos);
  CHECK(refused(s3("s3://")).find("bucket name ''") != std::string::npos);
  CHECK(refused(s3("s3:///prefix/")).find("bucket name ''") != std::string::npos);
  CHECK(refused(s3("s3://bu:cket/")).find("bucket name 'bu:cket'") != std::string::npos);
  // Credentials where the bucket goes, or in the endpoint, are never quoted.
  const std::string creds = refused(s3("s3://AKID:hunter2@bucket/p/?X-Amz-Signature=sig"));
  CHECK(creds.find("hunter2") == std::string::npos);
  CHECK(creds.find("sig") == std::string::npos);
  CHECK(creds.find("s3 url 's3://***@bucket/p/?...': bucket name '***@bucket'") != std::string::npos);
  const std::string endpoint = refused(s3("s3://bucket/", "http://k:hunter2@127.0.0.1:9000"));
  CHECK(endpoint.find("hunter2") == std::string::npos);
  CHECK(endpoint.find("http://***@127.0.0.1:9000") != std::string::npos);
  CHECK(refused(s3("s3://bucket/", "", "EU West")).find("region 'EU West'") != std::string::npos);
  CHECK(refused(s3("s3://bucket/", "127.0.0.1:9000")).find("not an absolute URL") != std::string::npos);
  CHECK(refused(s3("s3://bucket/", "ftp://host")).find("not http or https") != std::string::npos);
  CHECK(refused(s3("s3://bucket/", "http://host/?x=1")).find("query") != std::string::npos);
  const std::string userinfo = refused(s3("s3://bucket/", "http://user:pa55@host"));
  CHECK(userinfo.find("credentials") != std::string::npos);
  CHECK(userinfo.find("pa55") == std::string::npos);
  CHECK(refused(s3("s3://bucket/", "http://127.0.0.1:9000", "", false)).find("set path_style: true") != std::string::npos);
  CHECK(refused(s3("s3://Bucket_1/", "", "", false)).find("set path_style: true") != std::string::npos);
}

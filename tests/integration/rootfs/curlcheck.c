/* Loads the libcurl that the container artifact ships (/usr/local/lib/tensorinit/libcurl.so.4)
 * the way tensorinit does (dlopen of the full path; its dependencies must resolve from their own
 * directory through RPATH $ORIGIN) and fetches URL to stdout. Run in a root filesystem that holds
 * only glibc besides the artifact (test_container_rootfs.sh), so a missing library cannot be
 * found on the host by accident.
 *
 *   curlcheck LIBCURL URL      prints curl_version() on stderr, the body on stdout; exit 0 on 200 */
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdio.h>

static size_t write_body(char* data, size_t size, size_t n, void* out) {
  return fwrite(data, size, n, (FILE*)out) * size;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: curlcheck LIBCURL URL\n");
    return 2;
  }
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "curlcheck: %s\n", dlerror());
    return 3;
  }
  char* (*version)(void) = (char* (*)(void))dlsym(lib, "curl_version");
  CURL* (*easy_init)(void) = (CURL * (*)(void)) dlsym(lib, "curl_easy_init");
  CURLcode (*setopt)(CURL*, CURLoption, ...) = (CURLcode(*)(CURL*, CURLoption, ...))dlsym(lib, "curl_easy_setopt");
  CURLcode (*perform)(CURL*) = (CURLcode(*)(CURL*))dlsym(lib, "curl_easy_perform");
  CURLcode (*getinfo)(CURL*, CURLINFO, ...) = (CURLcode(*)(CURL*, CURLINFO, ...))dlsym(lib, "curl_easy_getinfo");
  if (!version || !easy_init || !setopt || !perform || !getinfo) {
    fprintf(stderr, "curlcheck: libcurl lacks a function\n");
    return 3;
  }
  fprintf(stderr, "%s\n", version());
  CURL* h = easy_init();
  setopt(h, CURLOPT_URL, argv[2]);
  setopt(h, CURLOPT_WRITEFUNCTION, write_body);
  setopt(h, CURLOPT_WRITEDATA, stdout);
  CURLcode rc = perform(h);
  long status = 0;
  getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK || status != 200) {
    fprintf(stderr, "curlcheck: %s: curl code %d, HTTP %ld\n", argv[2], (int)rc, status);
    return 1;
  }
  return 0;
}

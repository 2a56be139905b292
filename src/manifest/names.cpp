// The manifest's words for its enums, as written in YAML (manifest.hpp to_string): the tables
// parse reads (manifest/words.hpp).
#include "manifest/manifest.hpp"
#include "manifest/words.hpp"

namespace tensorinit::manifest {

const char* to_string(HandoffMode mode) { return word_of(kHandoffModeWords, mode); }
const char* to_string(Format format) { return weight_format_name(format).data(); }
const char* to_string(Policy policy) { return word_of(kPolicyWords, policy); }
const char* to_string(Verify verify) { return word_of(kVerifyWords, verify); }
const char* to_string(DirectIo direct_io) { return word_of(kDirectIoWords, direct_io); }
const char* to_string(StartWhen start) { return word_of(kStartWhenWords, start); }
const char* to_string(ReadyProbe probe) { return word_of(kReadyProbeWords, probe); }
const char* to_string(Restart restart) { return word_of(kRestartWords, restart); }
const char* to_string(CacheSave save) { return word_of(kCacheSaveWords, save); }

}  // namespace tensorinit::manifest

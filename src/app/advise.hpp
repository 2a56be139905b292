// `plan --advise`: bake the weights into the image, or keep them on a volume? A cold start's
// weight time under each, from the model size and the source rates (measured where a candidate
// exists, else given or defaulted). Pure: no I/O here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tensorinit::app {

struct AdviseInputs {
  uint64_t bytes = 0;                 // what a start reads (the model's files)
  double image_read_bps = 1.1e9;      // the node's local disk (an image layer); measured.md: 1.1-2.0 GB/s
  double pull_bps = 0.2e9;            // registry pull incl. layer decompression (gzip layers: ~0.1-0.3 GB/s)
  double volume_read_bps = 0;         // 0: no volume rate known
  double volume_attach_s = 0;         // fixed cost of attaching the volume to a new node
  std::optional<double> remote_bps;   // a remote candidate's measured rate, when there is one
  std::vector<std::string> measured;  // which rates were measured (for the output)
};

struct AdviceRow {
  std::string strategy;
  double cold_node_s = 0;  // the image is not on the node yet (scale-up onto a fresh node)
  double warm_node_s = 0;  // the image is cached on the node (restart, scale-up onto a used node)
};

struct Advice {
  std::vector<AdviceRow> rows;
  std::string recommendation;  // one paragraph
};

Advice advise(const AdviseInputs& in);

}  // namespace tensorinit::app

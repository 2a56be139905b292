#include "app/advise.hpp"

#include <fmt/format.h>

#include "util/units.hpp"

namespace tensorinit::app {

Advice advise(const AdviseInputs& in) {
  const double b = static_cast<double>(in.bytes);
  Advice out;
  // Baked: a fresh node pulls the layer (and unpacks it) before the container starts, then the
  // start reads it from local disk; a node that has the image only reads.
  const double read_local = b / in.image_read_bps;
  out.rows.push_back({"bake into the image", b / in.pull_bps + read_local, read_local});
  if (in.volume_read_bps > 0) {
    const double read_volume = in.volume_attach_s + b / in.volume_read_bps;
    out.rows.push_back({"volume", read_volume, read_volume});
  }
  if (in.remote_bps && *in.remote_bps > 0) {
    const double read_remote = b / *in.remote_bps;
    out.rows.push_back({"remote (no cache)", read_remote, read_remote});
  }
  const AdviceRow& bake = out.rows.front();
  if (in.volume_read_bps <= 0) {
    out.recommendation = fmt::format(
        "No volume rate known (no usable volume candidate; give --volume-rate): baking costs {:.1f} s on a "
        "fresh node and {:.1f} s once the image is cached.", bake.cold_node_s, bake.warm_node_s);
    return out;
  }
  const AdviceRow& volume = out.rows[1];
  // Break-even size for a fresh node: b/pull + b/image = attach + b/volume.
  const double per_byte_gap = 1 / in.pull_bps + 1 / in.image_read_bps - 1 / in.volume_read_bps;
  std::string breakeven = per_byte_gap > 0 && in.volume_attach_s > 0
                              ? fmt::format(" Break-even on a fresh node near {}: smaller models start faster baked.",
                                            format_bytes(static_cast<uint64_t>(in.volume_attach_s / per_byte_gap)))
                              : "";
  if (volume.cold_node_s < bake.cold_node_s && volume.warm_node_s <= bake.warm_node_s)
    out.recommendation = fmt::format("Use the volume: {:.1f} s against {:.1f} s baked on a fresh node, and a smaller "
                                     "image to push on every deploy.{}", volume.cold_node_s, bake.cold_node_s, breakeven);
  else if (volume.cold_node_s < bake.cold_node_s)
    out.recommendation = fmt::format(
        "Use the volume when replicas land on fresh nodes ({:.1f} s against {:.1f} s baked); bake when nodes keep the "
        "image ({:.1f} s against {:.1f} s).{}", volume.cold_node_s, bake.cold_node_s, bake.warm_node_s,
        volume.warm_node_s, breakeven);
  else
    out.recommendation = fmt::format("Bake the weights into the image: {:.1f} s on a fresh node against {:.1f} s from "
                                     "the volume, {:.1f} s once the image is cached.{}", bake.cold_node_s,
                                     volume.cold_node_s, bake.warm_node_s, breakeven);
  return out;
}

}  // namespace tensorinit::app

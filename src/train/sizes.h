// The model sizes wand-train accepts, shared with the commands that drive it (`wand study
// mixture`), so that a size the trainer would refuse is refused before any corpus is made.
// Header-only: wand-train links libtorch and nothing of wand's libraries.
#pragma once

namespace wand::train {

inline constexpr int kMaxDim = 65536;
inline constexpr int kMaxLayers = 1024;
inline constexpr int kMaxHeads = 4096;  // also --kv-heads
inline constexpr int kMaxFfn = 1 << 20;
inline constexpr int kMaxSeq = 1 << 20;

}  // namespace wand::train

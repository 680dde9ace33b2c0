// The smallest useful network for tests that train: 32 px input, stem 8,16 (an 8x8 token grid),
// one block of width 16 with 2 heads. Trains in seconds on one thread.
#pragma once

#include "model/card.h"

namespace medattn::testing {

inline void make_tiny(model::ModelCard& card, int channels = 1) {
  card.preprocess.image_size = 32;
  card.preprocess.channels = channels;
  card.arch.stem_channels = {8, 16};
  card.arch.dim = 16;
  card.arch.depth = 1;
  card.arch.heads = 2;
}

}  // namespace medattn::testing

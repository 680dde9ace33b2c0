// The network as the code that runs it sees it (the heatmap methods, explain()): what a
// forward pass returns and free functions on a model::AttnNet, declared without LibTorch's
// module headers. A source that includes only this compiles in a few seconds where
// <torch/torch.h> costs 20-40 s and over 1 GB of compiler memory; sources that build, train or
// load the network include model/net.h, which defines AttnNet and includes this.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>
#include <vector>

namespace medattn::model {

class AttnNet;  // model/net.h: TORCH_MODULE(AttnNet), a shared handle to an AttnNetImpl

// What one forward pass returns.
struct NetOutput {
  at::Tensor logits;                   // [B,K]
  // Per block: [B,H,T,T], T = 1 + grid*grid (CLS first), + F covariate tokens last with joint fusion.
  std::vector<at::Tensor> attentions;
  // Cross fusion, per block: [B,H,1+grid*grid,F] (keep_attention only).
  std::vector<at::Tensor> cross_attentions;
  at::Tensor feature_map;              // last CNN stage before projection: [B,C,g,g]
  at::Tensor tokens;                   // the token sequence after the final norm: [B,T,D]
  // Eval mode only: the spatial mean of each stem stage's output, [B,C_s] per stage.
  std::vector<at::Tensor> stage_means;
};

// The functions below take the handle const; the network it shares is not (forward() runs
// it, set_eval() changes its mode), as with net-> on a copy of the handle.

// net->forward(x, keep_attention, clinical) (model/net.h): x [B,C,S,S] normalised input;
// clinical [B,F] or undefined (all missing).
NetOutput forward(const AttnNet& net, const at::Tensor& x, bool keep_attention = false,
                  const at::Tensor& clinical = {});

// Puts the network in eval mode (net->eval()).
void set_eval(const AttnNet& net);

// The token grid's side g (image tokens = g*g).
int grid_size(const AttnNet& net);
// Token layout: 0 = CLS, 1..grid*grid = image, then one per clinical covariate.
int64_t image_tokens(const AttnNet& net);
int64_t clinical_count(const AttnNet& net);
// The covariates meet the image through cross-attention blocks (else: joint tokens).
bool cross_fusion(const AttnNet& net);

// The networks of an ensemble, for code that sees AttnNet only as declared here (the members
// of std::vector<AttnNet> itself need the whole type).
std::vector<const AttnNet*> members(const std::vector<AttnNet>& nets);

// Test-time augmentation views for card.tta: bit 1 flips horizontally (the last dimension),
// bit 2 vertically (the one before); view 0 is the image itself, and both flips add view 3.
std::vector<int> tta_views(const std::vector<std::string>& tta);

// The views that combine the flips in `bits` (1 horizontal, 2 vertical): every subset of them.
std::vector<int> views_of(int bits);

// x flipped as `view` says, on its last two dimensions ([...,H,W]). Each view is its own inverse,
// so the same call takes a map of a flipped input back to the original's orientation.
at::Tensor flip_view(const at::Tensor& x, int view);

// The model's logits for x: the mean over `views` of the logits of each flipped copy (one view
// or none: a plain forward pass). Runs without gradients, in eval mode. A caller that already
// ran the plain pass passes its logits as `identity_logits`, and the identity view (views[0]
// when present) is not run again.
at::Tensor view_logits(AttnNet& net, const at::Tensor& x, const at::Tensor& clinical,
                       const std::vector<int>& views, const at::Tensor& identity_logits = {});

// The same for an ensemble: the mean over `nets` of each one's view_logits.
at::Tensor view_logits(const std::vector<AttnNet>& nets, const at::Tensor& x, const at::Tensor& clinical,
                       const std::vector<int>& views);

// A 2D convolution whose result for each sample does not depend on the batch size (one
// oneDNN kernel for every batch, where LibTorch's own choice changes with it). x: [B,C,H,W].
at::Tensor conv2d_each(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                       at::IntArrayRef padding, at::IntArrayRef stride = {1, 1}, at::IntArrayRef dilation = {1, 1},
                       int64_t groups = 1);

}  // namespace medattn::model

// 04 — param_server: a parameter server sharded over actors.
//
// Logistic regression on generated data, trained by asynchronous SGD (as in
// DistBelief and the Ray paper's parameter-server example):
//
//  * the weight vector is split into --shards ParamShard actors, spread over
//    the nodes; a shard applies the gradient slices pushed to it;
//  * --workers DataWorker actors each generate and keep their own slice of
//    the training data; their train() method loops: pull every shard (calls
//    in parallel, then get), compute the gradient of a minibatch, push each
//    shard its slice without waiting. Workers never wait for each other:
//    the weights a worker pulls already hold whatever the others pushed;
//  * the driver watches: while the workers run it pulls the weights every
//    --watch-ms, measures loss and accuracy on held-out data, and prints them.
//
// The run checks that the model converged: the held-out loss falls to a
// fraction of the initial log(2) and the accuracy nears the best possible.
//
//   mpirun -n 3 ./prism-param-server              (1 GCS rank + 2 node ranks)
#include <prism/prism.hpp>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/serialization/vector.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <vector>

// The learning problem, the same on every rank: labels come from a hidden
// weight vector, with some flipped at random (so 100% accuracy is impossible).
struct Problem {
  int dim = 200;
  int samples_per_worker = 4000;
  float flip = 0.05f;  // fraction of labels flipped
  uint64_t seed = 1;
};

namespace {

// Sample i of data stream `stream` (0: held-out; w + 1: worker w's slice).
void make_samples(const Problem& p, int stream, int n, std::vector<float>& x,
                  std::vector<float>& y) {
  std::mt19937_64 truth_rng(p.seed);  // the hidden weights: the same for every stream
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> truth(static_cast<size_t>(p.dim));
  for (auto& t : truth) t = g(truth_rng) * 3.f / std::sqrt(static_cast<float>(p.dim));
  std::mt19937_64 rng(p.seed * 1000003ULL + static_cast<uint64_t>(stream));
  std::uniform_real_distribution<float> u(0.f, 1.f);
  x.resize(static_cast<size_t>(n) * truth.size());
  y.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    float dot = 0;
    for (size_t d = 0; d < truth.size(); ++d) {
      const float v = g(rng);
      x[static_cast<size_t>(i) * truth.size() + d] = v;
      dot += v * truth[d];
    }
    const bool label = dot > 0;
    y[static_cast<size_t>(i)] = (u(rng) < p.flip) != label ? 1.f : 0.f;
  }
}

float sigmoid(float z) {
  return 1.f / (1.f + std::exp(-z));
}

}  // namespace

// One slice of the weights. Calls run one at a time, so no locks: a push
// and a pull never overlap.
class ParamShard {
 public:
  ParamShard(int size, float lr) : w_(static_cast<size_t>(size), 0.f), lr_(lr) {}
  std::vector<float> pull() const { return w_; }
  void push(std::vector<float> grad) {
    for (size_t i = 0; i < w_.size(); ++i) w_[i] -= lr_ * grad[i];
    ++pushes_;
  }
  long pushes() const { return pushes_; }

 private:
  std::vector<float> w_;
  float lr_;
  long pushes_ = 0;
};
PRISM_ACTOR(ParamShard, &ParamShard::pull, &ParamShard::push, &ParamShard::pushes);

// A worker: its slice of the data is state it keeps; the shards' handles are
// constructor arguments like any value.
class DataWorker {
 public:
  DataWorker(std::vector<prism::ActorHandle<ParamShard>> shards, Problem p, int index, int batch)
      : shards_(std::move(shards)),
        dim_(static_cast<size_t>(p.dim)),
        batch_(batch),
        rng_(p.seed + static_cast<uint64_t>(index)) {
    make_samples(p, index + 1, p.samples_per_worker, x_, y_);
  }

  // `steps` rounds of pull, gradient, push. Returns the steps made.
  int train(int steps) {
    const size_t per_shard = dim_ / shards_.size();
    std::uniform_int_distribution<size_t> pick(0, y_.size() - 1);
    std::vector<float> w(dim_), grad(dim_);
    for (int s = 0; s < steps; ++s) {
      std::vector<prism::ObjectRef<std::vector<float>>> parts;  // all pulls in flight at once
      for (auto& shard : shards_) parts.push_back(shard.call(&ParamShard::pull).remote());
      for (size_t k = 0; k < parts.size(); ++k) {
        const auto part = prism::get(parts[k]);
        std::copy(part.begin(), part.end(), w.begin() + static_cast<long>(k * per_shard));
      }
      std::fill(grad.begin(), grad.end(), 0.f);
      for (int b = 0; b < batch_; ++b) {
        const size_t i = pick(rng_);
        const float* xi = &x_[i * dim_];
        float z = 0;
        for (size_t d = 0; d < dim_; ++d) z += w[d] * xi[d];
        const float err = (sigmoid(z) - y_[i]) / static_cast<float>(batch_);
        for (size_t d = 0; d < dim_; ++d) grad[d] += err * xi[d];
      }
      // Fire and forget: this worker's next pull from a shard runs after
      // this push to it (one caller's calls run in order), other workers'
      // calls interleave.
      for (size_t k = 0; k < shards_.size(); ++k) {
        const auto from = grad.begin() + static_cast<long>(k * per_shard);
        shards_[k]
            .call(&ParamShard::push)
            .remote(std::vector<float>(from, from + static_cast<long>(per_shard)));
      }
    }
    // One last call to every shard runs after this worker's pushes to it (one
    // caller's calls run in order): when train() returns, its pushes are in.
    for (auto& shard : shards_) prism::get(shard.call(&ParamShard::pushes).remote());
    return steps;
  }

 private:
  std::vector<prism::ActorHandle<ParamShard>> shards_;
  size_t dim_;
  int batch_;
  std::mt19937_64 rng_;
  std::vector<float> x_, y_;  // this worker's samples, row-major
};
PRISM_ACTOR(DataWorker, &DataWorker::train);

namespace {

struct Options {
  Problem problem;
  int shards = 4, workers = 0, steps = 1500, batch = 32, test = 2000, watch_ms = 25;
  float lr = 0.1f;
  double max_loss = 0.45, min_accuracy = 0.85;
};

struct Fit {
  double loss = 0, accuracy = 0;
};

Fit evaluate(const std::vector<float>& w, const std::vector<float>& x,
             const std::vector<float>& y) {
  Fit f;
  const size_t dim = w.size();
  for (size_t i = 0; i < y.size(); ++i) {
    float z = 0;
    for (size_t d = 0; d < dim; ++d) z += w[d] * x[i * dim + d];
    const float p = std::clamp(sigmoid(z), 1e-6f, 1.f - 1e-6f);
    f.loss -= y[i] > 0.5f ? std::log(p) : std::log(1.f - p);
    f.accuracy += (p > 0.5f) == (y[i] > 0.5f);
  }
  f.loss /= static_cast<double>(y.size()), f.accuracy /= static_cast<double>(y.size());
  return f;
}

void drive(const Options& o) {
  using Clock = std::chrono::steady_clock;
  const int nodes = prism::num_nodes();
  int workers = o.workers;
  if (workers <= 0)
    for (const auto& n : prism::nodes()) workers += static_cast<int>(n.num_cpus);
  if (o.problem.dim % o.shards != 0) throw std::invalid_argument("--dim must divide by --shards");

  std::vector<prism::ActorHandle<ParamShard>> shards;
  for (int k = 0; k < o.shards; ++k)
    shards.push_back(prism::actor<ParamShard>(o.problem.dim / o.shards, o.lr)
                         .options({.node = k % nodes})
                         .remote());
  std::vector<prism::ActorHandle<DataWorker>> team;
  for (int w = 0; w < workers; ++w)
    team.push_back(prism::actor<DataWorker>(shards, o.problem, w, o.batch)
                       .options({.node = w % nodes})
                       .remote());
  std::vector<float> test_x, test_y;
  make_samples(o.problem, 0, o.test, test_x, test_y);
  auto weights = [&] {
    std::vector<prism::ObjectRef<std::vector<float>>> parts;
    for (auto& s : shards) parts.push_back(s.call(&ParamShard::pull).remote());
    std::vector<float> w;
    for (auto& p : parts) {
      const auto part = prism::get(p);
      w.insert(w.end(), part.begin(), part.end());
    }
    return w;
  };
  const Fit start = evaluate(weights(), test_x, test_y);
  std::printf("%d shards, %d workers, dim %d, %d samples each; held-out loss %.4f, accuracy %.3f\n",
              o.shards, workers, o.problem.dim, o.problem.samples_per_worker, start.loss,
              start.accuracy);

  const auto t0 = Clock::now();
  std::vector<prism::ObjectRef<int>> training;
  for (auto& w : team) training.push_back(w.call(&DataWorker::train).remote(o.steps));
  // Watch while they train: wait with a timeout is the driver's clock.
  for (;;) {
    auto [done, running] =
        prism::wait(training, training.size(), std::chrono::milliseconds(o.watch_ms));
    const Fit f = evaluate(weights(), test_x, test_y);
    std::printf("%7.3f s: held-out loss %.4f, accuracy %.3f (%zu of %zu workers done)\n",
                std::chrono::duration<double>(Clock::now() - t0).count(), f.loss, f.accuracy,
                done.size(), training.size());
    if (running.empty()) break;
  }
  long steps = 0;
  for (int s : prism::get(training)) steps += s;
  long pushes = 0;
  for (auto& s : shards) pushes += prism::get(s.call(&ParamShard::pushes).remote());
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const Fit end = evaluate(weights(), test_x, test_y);
  std::printf("%ld steps (%ld pushes) in %.3f s: %.0f steps/s\n", steps, pushes, wall,
              static_cast<double>(steps) / wall);
  if (pushes != steps * o.shards) throw std::runtime_error("pushes were lost");
  if (end.loss > o.max_loss || end.accuracy < o.min_accuracy)
    throw std::runtime_error("did not converge: loss " + std::to_string(end.loss) + ", accuracy " +
                             std::to_string(end.accuracy));
  std::printf(
      "prism-param-server: OK (held-out loss %.4f -> %.4f, accuracy %.3f -> %.3f; "
      "best possible ~%.3f)\n",
      start.loss, end.loss, start.accuracy, end.accuracy, 1.0 - o.problem.flip);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A parameter server sharded over Prism actors: asynchronous SGD"};
  Options o;
  app.add_option("--dim", o.problem.dim, "features (a multiple of --shards)");
  app.add_option("--samples", o.problem.samples_per_worker, "training samples per worker");
  app.add_option("--seed", o.problem.seed, "data seed");
  app.add_option("--shards", o.shards, "parameter shards (actors)");
  app.add_option("--workers", o.workers, "data workers (actors; default: one per CPU slot)");
  app.add_option("--steps", o.steps, "SGD steps per worker");
  app.add_option("--batch", o.batch, "minibatch size");
  app.add_option("--lr", o.lr, "SGD learning rate");
  app.add_option("--watch-ms", o.watch_ms, "how often the driver measures the model");
  app.add_option("--max-loss", o.max_loss, "fail unless the final held-out loss is below");
  app.add_option("--min-accuracy", o.min_accuracy, "fail unless the final accuracy is above");
  app.allow_extras();  // --prism-* flags are the runtime's
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return prism::run(argc, argv, [&] { drive(o); });
}

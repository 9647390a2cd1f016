// Prism: Ray's programming model (remote functions, futures, wait, nested
// tasks, resource-aware scheduling) as a native runtime on MPI and UCX.
//
// This is the only header you need:
//
//   #include <prism/prism.hpp>
//   int square(int x) { return x * x; }
//   PRISM_REMOTE(square);
//   int main(int argc, char** argv) {
//     return prism::run(argc, argv, [] {
//       auto r = prism::task(square).remote(7);   // returns at once
//       std::printf("%d\n", prism::get(r));        // 49
//     });
//   }
//
// Run it with `mpirun -n 3 ./app` (or launch/prism-run): one rank becomes the
// GCS, the others node ranks; the lambda runs on the first node rank.
#pragma once

#include "prism/actor.hpp"
#include "prism/api.hpp"
#include "prism/collective.hpp"
#include "prism/errors.hpp"
#include "prism/group.hpp"
#include "prism/object_ref.hpp"
#include "prism/options.hpp"
#include "prism/remote.hpp"
#include "prism/serialization.hpp"

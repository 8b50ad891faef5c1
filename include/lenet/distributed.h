// Data-parallel training over several processes (`mpirun -np N lenet train`).
//
// The processes a launcher started together form one group; train() uses it
// by itself (one all-reduce of the flat gradient buffer per step, sharded
// evaluation, rank 0 alone writing files). What a program around train()
// needs is here: starting the group, who it is, and agreeing on errors so that
// no process is left waiting for another that failed. Without MPI in the
// build (LENET_MPI=OFF) the group is this one process, and start() refuses a
// process that a launcher started.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

namespace lenet::distributed {

// Whether this build has MPI (CMake option LENET_MPI).
bool built_with_mpi();
// The launcher that started this process, if any: "mpirun" when Open MPI's or a
// PMIx/PMI launcher's variables are set (OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK).
bool launched_by_mpi();
// The rank the launcher gave this process, from those variables (0 without
// one): who speaks when the group itself cannot start.
int launcher_rank();

// Joins the group of processes started together (MPI_Init) when a launcher
// started this one; otherwise the group is this process alone. Throws
// std::runtime_error when launched by mpirun but built without MPI, or when
// MPI fails to start. Call once, before the other functions; `finish()` at exit.
void start(int& argc, char**& argv);
void finish();

int rank();        // 0 .. size() - 1
int size();        // processes in the group (1 without a launcher)
int local_size();  // processes of the group on this host (they share its cores)
// Seconds a process waits for the others in a collective before it gives up
// (LENET_MPI_TIMEOUT, default 600): a rank that hangs cannot hang the rest forever.
double timeout_seconds();

// Thrown on every rank when `on_all_ranks` found a failure on any of them. The
// message is the failing rank's own when every rank failed, otherwise it names
// the first failing rank ("rank 1 of 2: ..."). Only rank 0 should print it.
struct GroupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Runs `step` on every rank, then compares notes: returns when it succeeded
// everywhere, throws GroupError on every rank otherwise. With one process it
// simply runs `step` (its exceptions pass unchanged).
void on_all_ranks(const std::function<void()>& step);

// Rank 0's string on every rank (e.g. the run folder it chose).
std::string from_rank0(const std::string& text);

// Ends every process of the group with `code` at once (MPI_Abort); for a
// failure only one rank saw, after it has printed why.
[[noreturn]] void abort_all(int code);

}  // namespace lenet::distributed

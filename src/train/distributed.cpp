// The process group of data-parallel training: the one file that calls MPI.
// Built without MPI (LENET_HAVE_MPI undefined) the group is this process and
// every collective is a no-op.
//
// Every collective is non-blocking, waited for with a deadline: a rank that
// hangs makes the others throw after timeout_seconds() instead of waiting
// forever (the CLI then prints the reason and aborts the job). A rank that
// dies is noticed by mpirun, which ends the job at once.
#include "train/distributed.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#ifdef LENET_HAVE_MPI
#include <mpi.h>
#endif

namespace lenet::distributed {

namespace {

struct Group {
  int rank = 0, size = 1, local_size = 1;
  bool mpi = false;  // MPI_Init was called by start()
  double timeout = 600;
};
Group g_group;

double timeout_from_env() {
  const char* env = std::getenv("LENET_MPI_TIMEOUT");
  if (!env || !*env) return 600;
  char* end = nullptr;
  const double v = std::strtod(env, &end);
  if (end == env || *end != '\0' || !(v > 0) || !std::isfinite(v))
    throw std::runtime_error(std::string("LENET_MPI_TIMEOUT must be a positive number of seconds, got '") + env + "'");
  return v;
}

#ifdef LENET_HAVE_MPI
std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an unknown error";
  }
}

void check(int code, const char* call, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string(call) + " (" + what + ") failed on rank " + std::to_string(g_group.rank) + ": " +
                           std::string(text, static_cast<size_t>(length)));
}

// Waits for a non-blocking collective, at most the group's timeout. Spins
// briefly (a step's ranks arrive close together), then sleeps between tests so
// that a rank waiting for rank 0's file writing leaves the cores to it.
void wait(MPI_Request& request, const char* what) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(g_group.timeout);
  for (unsigned tests = 0;; ++tests) {
    int done = 0;
    check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test", what);
    if (done) return;
    const auto now = Clock::now();
    if (now > deadline)
      throw std::runtime_error("rank " + std::to_string(g_group.rank) + " waited " +
                               std::to_string(static_cast<int>(g_group.timeout)) + " s for the other ranks in the " +
                               what + " (a rank hangs or was stopped; LENET_MPI_TIMEOUT sets the limit)");
    if (now - start < std::chrono::milliseconds(2))
      sched_yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

template <typename T>
void sum_mpi(std::span<T> values, MPI_Datatype type, const char* what) {
  // MPI counts are int: large buffers go in pieces.
  constexpr size_t kPiece = size_t{1} << 30;
  for (size_t at = 0; at < values.size(); at += kPiece) {
    const int n = static_cast<int>(std::min(kPiece, values.size() - at));
    MPI_Request request{};
    check(MPI_Iallreduce(MPI_IN_PLACE, values.data() + at, n, type, MPI_SUM, MPI_COMM_WORLD, &request),
          "MPI_Iallreduce", what);
    wait(request, what);
  }
}

void broadcast_mpi(void* data, int count, MPI_Datatype type, int root, const char* what) {
  MPI_Request request{};
  check(MPI_Ibcast(data, count, type, root, MPI_COMM_WORLD, &request), "MPI_Ibcast", what);
  wait(request, what);
}

// `text` from rank `root` on every rank.
std::string broadcast(std::string text, int root, const char* what) {
  int64_t length = static_cast<int64_t>(text.size());
  broadcast_mpi(&length, 1, MPI_INT64_T, root, what);
  if (length < 0 || length > std::numeric_limits<int>::max())
    throw std::runtime_error(std::string("broadcast (") + what + "): bad length " + std::to_string(length));
  text.resize(static_cast<size_t>(length));
  if (length > 0) broadcast_mpi(text.data(), static_cast<int>(length), MPI_CHAR, root, what);
  return text;
}
#endif

}  // namespace

bool built_with_mpi() {
#ifdef LENET_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (const char* v = std::getenv(name); v && *v) return true;
  return false;
}

int launcher_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
    if (const char* v = std::getenv(name); v && *v) return std::atoi(v);
  return 0;
}

void start(int& argc, char**& argv) {
  g_group.timeout = timeout_from_env();
  if (!launched_by_mpi()) return;
#ifndef LENET_HAVE_MPI
  (void)argc;
  (void)argv;
  throw std::runtime_error(
      "this lenet was built without MPI (LENET_MPI=OFF) but was started by mpirun, so it would train separate "
      "copies; install libopenmpi-dev (bash scripts/setup.sh) and rebuild, or run it without mpirun");
#else
  int provided = 0;
  // Only the main thread calls MPI; the worker threads never do.
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    throw std::runtime_error("MPI_Init_thread failed: cannot join the other processes");
  g_group.mpi = true;
  // Errors come back as codes (turned into exceptions), not as an abort inside MPI.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_group.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_group.size);
  MPI_Comm local{};
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
    MPI_Comm_size(local, &g_group.local_size);
    MPI_Comm_free(&local);
  }
#endif
}

void finish() {
#ifdef LENET_HAVE_MPI
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (g_group.mpi && !finalized) MPI_Finalize();
#endif
}

int rank() { return g_group.rank; }
int size() { return g_group.size; }
int local_size() { return g_group.local_size; }
double timeout_seconds() { return g_group.timeout; }

void on_all_ranks(const std::function<void()>& step) {
  std::exception_ptr error;
  try {
    step();
  } catch (...) {
    error = std::current_exception();
  }
  if (g_group.size == 1) {
    if (error) std::rethrow_exception(error);
    return;
  }
#ifdef LENET_HAVE_MPI
  // One slot per rank: after the sum every rank knows which ones failed.
  std::vector<int64_t> failed(static_cast<size_t>(g_group.size), 0);
  failed[static_cast<size_t>(g_group.rank)] = error ? 1 : 0;
  sum(std::span<int64_t>(failed), "status check");
  const auto first = std::find(failed.begin(), failed.end(), 1);
  if (first == failed.end()) return;
  const int culprit = static_cast<int>(first - failed.begin());
  const bool everyone = std::count(failed.begin(), failed.end(), 1) == g_group.size;
  const std::string message = broadcast(error ? message_of(error) : "", culprit, "status check");
  throw GroupError(
      everyone ? message : "rank " + std::to_string(culprit) + " of " + std::to_string(g_group.size) + ": " + message);
#endif
}

std::string from_rank0(const std::string& text) {
#ifdef LENET_HAVE_MPI
  if (g_group.size > 1) return broadcast(text, 0, "broadcast from rank 0");
#endif
  return text;
}

void abort_all(int code) {
#ifdef LENET_HAVE_MPI
  if (g_group.mpi) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::_Exit(code);
}

void sum(std::span<float> values, const char* what) {
#ifdef LENET_HAVE_MPI
  if (g_group.size > 1) sum_mpi(values, MPI_FLOAT, what);
#else
  (void)values;
  (void)what;
#endif
}
void sum(std::span<double> values, const char* what) {
#ifdef LENET_HAVE_MPI
  if (g_group.size > 1) sum_mpi(values, MPI_DOUBLE, what);
#else
  (void)values;
  (void)what;
#endif
}
void sum(std::span<int64_t> values, const char* what) {
#ifdef LENET_HAVE_MPI
  if (g_group.size > 1) sum_mpi(values, MPI_INT64_T, what);
#else
  (void)values;
  (void)what;
#endif
}

}  // namespace lenet::distributed

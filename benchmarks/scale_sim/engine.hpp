// The simulator's machinery: a priority queue of timed events, and threads
// that run jobs (CPU costs) on the cores of a host. A thread runs one job at a
// time; a host runs at most `cores` jobs at once and at most `cap` of one
// process's (a rank bound to fewer cores than the host has). Jobs are not
// preempted; a thread that still has jobs after one goes to the back of the
// host's ready list, so threads share busy cores round-robin, job by job, or,
// on a host with a time slice (an oversubscribed one), slice by slice.
// Not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <queue>
#include <vector>

namespace scale_sim {

class EventQueue {
 public:
  double now() const noexcept { return now_; }
  /// Runs `fn` at now() + delay (same-time events run in the order posted).
  void after(double delay, std::function<void()> fn) {
    heap_.push(Event{now_ + delay, next_seq_++, std::move(fn)});
  }
  /// Runs events until none is left, stop() is called or time passes `until`.
  void run(double until) {
    while (!heap_.empty() && !stopped_) {
      if (heap_.top().t > until) {
        now_ = until;
        return;
      }
      Event e = std::move(const_cast<Event&>(heap_.top()));
      heap_.pop();
      now_ = e.t;
      ++events_;
      e.fn();
    }
  }
  void stop() noexcept { stopped_ = true; }
  int64_t events() const noexcept { return events_; }

 private:
  struct Event {
    double t;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };
  std::priority_queue<Event, std::vector<Event>, std::greater<>> heap_;
  double now_ = 0;
  uint64_t next_seq_ = 0;
  int64_t events_ = 0;
  bool stopped_ = false;
};

struct Host;
struct Thread;

/// A process (rank): its threads may hold at most `cap` of its host's cores.
struct Proc {
  Host* host = nullptr;
  int cap = 1;
  int running = 0;
};

struct Host {
  int free = 1;                           // idle cores
  std::deque<Thread*> ready;              // threads with work, waiting for a core
  double spin_window_us = 50;             // a thread idle longer than this pays a wake
  std::vector<const Proc*> last_on_core;  // per idle core: the process it ran last
  double slice_us = 0;  // > 0: a thread with work keeps its core this long (OS time slice)
};

struct Job {
  double cost = 0;               // CPU time, µs
  std::function<double()> size;  // if set: called when the job starts, returns its cost
  std::function<void()> done;    // runs when the job ends
  double wake = 0;               // added: the thread was asleep
};

struct Thread {
  Proc* proc = nullptr;
  std::deque<Job> jobs;
  bool running = false, queued = false, in_done = false;
  double idle_since = 0;
  double slice_start = 0;       // when it last got a core after waiting or idling
  double busy_us = 0;           // all CPU time
  double busy_measured_us = 0;  // CPU time after the measurement starts
};

/// Runs jobs of threads on hosts' cores, in simulated time.
class Cpu {
 public:
  /// switch_us: a core that last ran another process pays it (only hosts
  /// given to track(), i.e. shared by several ranks).
  Cpu(EventQueue& q, double wake_us, double wake_latency_us, double switch_us)
      : q_(q),
        wake_us_(wake_us),
        wake_latency_us_(wake_latency_us),
        switch_us_(switch_us),
        track_cores_(switch_us > 0) {}
  /// Gives `h` its per-core memory of the last process run (cores idle).
  void track(Host& h, int cores) {
    if (track_cores_) h.last_on_core.assign(size_t(cores), nullptr);
  }
  void set_measure_from(double t) noexcept { measure_from_ = t; }

  /// Queues a job on `t`. If `t` had nothing to do for longer than its host's
  /// spin window, the job also pays the wake-up.
  void post(Thread* t, double cost, std::function<void()> done, std::function<double()> size = {}) {
    const bool idle = !t->running && !t->queued && t->jobs.empty();
    Job j{cost, std::move(size), std::move(done), 0};
    const bool asleep =
        idle && !t->in_done && q_.now() - t->idle_since > t->proc->host->spin_window_us;
    if (asleep) j.wake = wake_us_;
    t->jobs.push_back(std::move(j));
    if (asleep && wake_latency_us_ > 0) {
      // A sleeper needs wake_latency_us to run again; jobs posted meanwhile
      // wait with it (so a woken progress thread finds a batch).
      t->queued = true;
      q_.after(wake_latency_us_, [this, t] {
        t->queued = false;
        make_ready(t);
      });
    } else if (idle && !t->in_done) {
      make_ready(t);
    }
  }

 private:
  bool can_start(Thread* t) const {
    return t->proc->host->free > 0 && t->proc->running < t->proc->cap;
  }
  void make_ready(Thread* t) {
    if (can_start(t))
      start(t);
    else {
      t->proc->host->ready.push_back(t);
      t->queued = true;
    }
  }
  void start(Thread* t, bool same_slice = false) {
    Host* h = t->proc->host;
    if (!same_slice) t->slice_start = q_.now();
    --h->free;
    ++t->proc->running;
    t->running = true;
    Job j = std::move(t->jobs.front());
    t->jobs.pop_front();
    // Take an idle core that last ran this process if there is one; another
    // process's core costs a process switch (address space, cold caches).
    double switch_cost = 0;
    if (!h->last_on_core.empty()) {
      auto it = std::find(h->last_on_core.begin(), h->last_on_core.end(), t->proc);
      if (it == h->last_on_core.end()) {
        it = h->last_on_core.begin();
        switch_cost = *it != nullptr ? switch_us_ : 0;
      }
      h->last_on_core.erase(it);
    }
    const double cost = (j.size ? j.size() : j.cost) + j.wake + switch_cost;
    const double begin = q_.now(), end = begin + cost;
    t->busy_us += cost;
    if (end > measure_from_) t->busy_measured_us += end - std::max(begin, measure_from_);
    q_.after(cost, [this, t, done = std::move(j.done)] { finish(t, done); });
  }
  void finish(Thread* t, const std::function<void()>& done) {
    Host* h = t->proc->host;
    ++h->free;
    if (track_cores_) h->last_on_core.push_back(t->proc);
    --t->proc->running;
    t->running = false;
    t->in_done = true;
    if (done) done();
    t->in_done = false;
    if (!t->jobs.empty()) {
      if (h->slice_us > 0 && q_.now() - t->slice_start < h->slice_us && can_start(t)) {
        start(t, true);  // its time slice is not over: it keeps the core
        dispatch(h);
        return;
      }
      h->ready.push_back(t);
      t->queued = true;
    } else {
      t->idle_since = q_.now();
    }
    dispatch(h);
  }
  void dispatch(Host* h) {
    for (auto it = h->ready.begin(); it != h->ready.end() && h->free > 0;) {
      Thread* t = *it;
      if (t->proc->running < t->proc->cap) {
        it = h->ready.erase(it);
        t->queued = false;
        start(t);
      } else {
        ++it;
      }
    }
  }

  EventQueue& q_;
  double wake_us_, wake_latency_us_, switch_us_;
  bool track_cores_;
  double measure_from_ = 0;
};

}  // namespace scale_sim

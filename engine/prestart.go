package engine

import (
	"log/slog"
	"slices"
	"sync"

	"github.com/mce-engine/mce/internal/prefork"
)

// Prestarted holds cluster processes started before Run, so that they go
// through their start (about 40 ms each on a 2-core VM: Go's runtime, the
// packages mce links, the heap's reserve) while the caller plans the
// tasks: `mce reduce` opens the store and plans for about 25 ms, `mce run`
// stats and plans its files. Run adopts them (Options.Prestarted): a
// process whose cluster Run makes with the same CPUs and memory limit is
// that cluster's first process, any other is killed. Close kills those no
// Run adopted; it is safe to call more than once, and after Run.
//
// A prestarted process waits for its config (the run folder, the job) on
// its stdin and does nothing else before it.
//
// The first cluster's process may be older still: `mce run`'s or `mce
// reduce`'s, which package prefork starts while mce initialises.
// Prestart takes it when it runs the same worker command with the same
// environment extras, and sends it the cluster's CPUs and memory limit at
// once (a "limits" message), which its environment could not give it.
type Prestarted struct {
	mu      sync.Mutex
	events  chan procEvent
	procs   []*proc // by cluster id
	specs   []procSpec
	adopted bool
}

// StartEarly starts o's clusters (Prestart) and puts them in
// o.Prestarted, for the Run the caller makes with o once it has planned;
// the caller defers the returned function, which kills them unless that
// Run adopted them. When they cannot start now, Run starts them.
func StartEarly(o *Options) (closeFn func()) {
	pre, err := Prestart(*o)
	if err != nil {
		if o.Logger != nil {
			o.Logger.Debug("clusters not started before planning; Run starts them", "error", err)
		}
		return func() {}
	}
	o.Prestarted = pre
	return pre.Close
}

// Prestart starts the cluster processes of opts' layout (its defaults
// filled in as Run fills them). The caller passes the result to Run in
// Options.Prestarted and defers Close (StartEarly does both).
func Prestart(opts Options) (*Prestarted, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Prestarted{events: make(chan procEvent, 64)}
	for id, s := range clusterShares(o) {
		spec := procSpec{
			cluster: id, gen: 1, cpus: o.Clusters[id], memLimit: s,
			exe: o.WorkerExe, args: o.WorkerArgs, env: o.WorkerEnv, logger: o.Logger,
		}
		pr, err := p.start(spec)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.procs = append(p.procs, pr)
		p.specs = append(p.specs, spec)
	}
	return p, nil
}

// start starts the process of cluster s. The first cluster's is the one
// package prefork started, when it runs that cluster's worker command: it
// is sent its CPUs and memory limit first (killed when it cannot take
// them). Any other process prefork started is killed.
func (p *Prestarted) start(s procSpec) (*proc, error) {
	if s.cluster > 0 {
		return startProc(s, p.events)
	}
	pf := prefork.Take(s.exe, s.args, s.env)
	if pf == nil {
		return startProc(s, p.events)
	}
	pr := adoptProc(s, pf, p.events)
	s.logger.Debug("cluster process started with mce, before its command line was read", "cluster", s.cluster, "pid", pr.pid)
	if err := pr.send(&toWorker{Type: "limits", Limits: &workerLimits{CPUs: s.cpus, MemLimit: s.memLimit}}); err != nil {
		pr.kill()
		return nil, err
	}
	return pr, nil
}

// clusterShares returns each cluster's share of the RAM limit, in
// proportion to its CPUs: its GOMEMLIMIT.
func clusterShares(o Options) []int64 {
	var sum int
	for _, n := range o.Clusters {
		sum += n
	}
	shares := make([]int64, len(o.Clusters))
	for id, n := range o.Clusters {
		shares[id] = o.RAMLimitBytes * int64(n) / int64(sum)
	}
	return shares
}

// take hands Run (whose options, defaults filled in, are o) the events
// channel and, by cluster id, the processes that match the clusters it
// makes (CPUs and memory limit per cluster, the worker's command): the
// others are killed, and their events come with a generation (1) Run's
// own processes of that cluster never have, or a cluster id it does not
// have. After take, Close does nothing, and another take gets nil: no
// channel, no process.
func (p *Prestarted) take(o Options) (chan procEvent, []*proc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.adopted {
		return nil, nil // closed, or taken by another Run
	}
	p.adopted = true
	shares := clusterShares(o)
	got := make([]*proc, len(o.Clusters))
	for id, pr := range p.procs {
		s := p.specs[id]
		if id < len(o.Clusters) && o.Clusters[id] == s.cpus && shares[id] == s.memLimit &&
			o.WorkerExe == s.exe && slices.Equal(o.WorkerArgs, s.args) && slices.Equal(o.WorkerEnv, s.env) {
			got[id] = pr
			continue
		}
		pr.kill()
	}
	return p.events, got
}

// Close kills the processes no Run adopted.
func (p *Prestarted) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.adopted {
		return
	}
	p.adopted = true
	for _, pr := range p.procs {
		pr.kill()
	}
}

// adoptLogger sends the process's stderr to logger from now on.
func (pr *proc) adoptLogger(logger *slog.Logger) { pr.logger.Store(logger) }

package engine

// PIDs returns the prestarted processes' ids, by cluster, for the tests.
func (p *Prestarted) PIDs() []int {
	var pids []int
	for _, pr := range p.procs {
		pids = append(pids, pr.pid)
	}
	return pids
}

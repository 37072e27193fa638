package raftstore

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// raftStates are the values of the tern_raft_state label, every one
// exported (0 or 1) so that a query for the leader count works the same
// on every node.
var raftStates = []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown}

// storeCollector reads the Store's Raft and FSM state when scraped: no
// goroutine, no counters to keep in step, and a scrape costs a few atomic
// loads and one copy of the (small) Raft configuration.
type storeCollector struct {
	s *Store

	state, term, commit, applied, last, leaderKnown, inQuorum,
	lastContact, configVersion, voters, servers,
	contentBytes, contentFiles, contentChunks *prometheus.Desc
}

// Collector returns a prometheus.Collector for this Store's Raft state,
// to register in the node's own registry:
//
//	reg.MustRegister(store.Collector())
//
// Metrics (all gauges):
//
//	tern_raft_state{state}            1 for the node's Raft state (Follower, Candidate, Leader, Shutdown), 0 for the others
//	tern_raft_term                    current term
//	tern_raft_commit_index            index of the last entry known committed
//	tern_raft_applied_index           index of the last entry applied to the FSM
//	tern_raft_last_log_index          index of the last entry in the log (or snapshot)
//	tern_raft_leader_known            1 when the node knows a leader
//	tern_raft_in_quorum               1 when the node leads or heard from its leader within QuorumTimeout
//	tern_raft_last_contact_seconds    on a follower, seconds since it last heard from the leader
//	tern_raft_voters                  voters in the latest Raft configuration
//	tern_raft_servers                 servers (voters and non-voters) in it
//	tern_config_version               the replicated configuration's version (0: none applied yet)
//	tern_config_content_bytes         bytes of file content the state holds (kept versions and uploads in progress, each chunk once)
//	tern_config_content_files         files it holds
//	tern_config_content_chunks        chunks they are made of
func (s *Store) Collector() prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &storeCollector{
		s:             s,
		state:         d("tern_raft_state", "1 for this node's Raft state (Follower, Candidate, Leader, Shutdown), 0 for the others.", "state"),
		term:          d("tern_raft_term", "Current Raft term."),
		commit:        d("tern_raft_commit_index", "Index of the last Raft log entry known to be committed."),
		applied:       d("tern_raft_applied_index", "Index of the last Raft log entry applied to this node's state."),
		last:          d("tern_raft_last_log_index", "Index of the last entry in this node's Raft log or snapshot."),
		leaderKnown:   d("tern_raft_leader_known", "1 when this node knows the cluster's leader."),
		inQuorum:      d("tern_raft_in_quorum", "1 when this node leads, or follows a leader it heard from within the quorum timeout."),
		lastContact:   d("tern_raft_last_contact_seconds", "On a follower, seconds since it last heard from the leader (absent on the leader or before any contact)."),
		configVersion: d("tern_config_version", "Version of the replicated Tern configuration this node has applied (0: none yet)."),
		voters:        d("tern_raft_voters", "Voters in the latest Raft configuration."),
		servers:       d("tern_raft_servers", "Servers, voters or not, in the latest Raft configuration."),
		contentBytes:  d("tern_config_content_bytes", "Bytes of configuration file content the replicated state holds (kept versions and uploads in progress, each chunk once)."),
		contentFiles:  d("tern_config_content_files", "Configuration files the replicated state holds."),
		contentChunks: d("tern_config_content_chunks", "Chunks the configuration files held are made of."),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.term, c.commit, c.applied, c.last, c.leaderKnown,
		c.inQuorum, c.lastContact, c.configVersion, c.voters, c.servers, c.contentBytes, c.contentFiles, c.contentChunks} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, rs := range raftStates {
		gauge(c.state, b2f(st.State == rs.String()), rs.String())
	}
	gauge(c.term, float64(st.Term))
	gauge(c.commit, float64(st.CommitIndex))
	gauge(c.applied, float64(st.AppliedIndex))
	gauge(c.last, float64(st.LastIndex))
	gauge(c.leaderKnown, b2f(st.LeaderID != ""))
	gauge(c.inQuorum, b2f(st.InQuorum))
	if !st.LastContact.IsZero() {
		gauge(c.lastContact, time.Since(st.LastContact).Seconds())
	}
	gauge(c.configVersion, float64(st.ConfigVersion))
	b := c.s.State().Blobs()
	gauge(c.contentBytes, float64(b.Bytes))
	gauge(c.contentFiles, float64(b.Files))
	gauge(c.contentChunks, float64(b.Chunks))
	// GetConfiguration answers from memory (no round trip through the
	// Raft loop); after Shutdown it may fail, and the two gauges are
	// left out rather than reported as 0 voters.
	f := c.s.raft.GetConfiguration()
	if f.Error() == nil {
		var voters int
		servers := f.Configuration().Servers
		for _, srv := range servers {
			if srv.Suffrage == raft.Voter {
				voters++
			}
		}
		gauge(c.voters, float64(voters))
		gauge(c.servers, float64(len(servers)))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

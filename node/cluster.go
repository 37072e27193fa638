package node

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dispatcher"
	"github.com/ternlb/tern/internal/run"
	"github.com/ternlb/tern/raftstore"
)

// Cluster timing that is not the operator's to tune.
const (
	// writeTimeout bounds a write an operator makes through the API when
	// the request has no deadline of its own: long enough to ride out a
	// leader election.
	writeTimeout = 15 * time.Second
	// reportTimeout bounds one batch of observations; a batch that fails
	// is proposed again a tick later.
	reportTimeout = 5 * time.Second
	// tick is how often the watcher looks at the clock while this node is
	// out of quorum (to notice it come back), and how soon a failed batch
	// is retried.
	tick = time.Second
)

// verdictTiming returns the verdict max age and refresh period: the given
// values, or three times the longest check interval (at least 30s) and a
// third of that.
func verdictTiming(cfg *config.Config, maxAge, refresh time.Duration) (time.Duration, time.Duration) {
	if maxAge <= 0 {
		maxAge = 30 * time.Second
		for _, c := range cfg.Checks {
			maxAge = max(maxAge, 3*c.Interval.D())
		}
	}
	if refresh <= 0 {
		refresh = maxAge / 3
	}
	return maxAge, min(refresh, maxAge)
}

// openStore opens the Raft store the node section asks for. A node whose
// data directory is empty but whose cluster already lists it (it lost its
// data) is refused at join (see joinCluster); a bootstrap node with an
// empty directory first asks its join peers whether a cluster already
// exists, so that a lost directory never starts a second cluster.
func (n *Node) openStore(cfg *config.Config, o Options) error {
	opts := raftstore.OptionsFor(cfg)
	opts.Logger = n.log.With("part", "raft")
	if o.Raft != nil {
		o.Raft(&opts)
	}
	n.fresh = emptyDir(opts.Dir)
	if n.fresh && opts.Bootstrap && len(cfg.Node.Join) > 0 {
		if err := refuseSecondCluster(cfg, opts.Dir, n.token, n.tls); err != nil {
			return err
		}
	}
	st, err := raftstore.Open(opts)
	if err != nil {
		return fmt.Errorf("node %q: %w", cfg.Node.Name, err)
	}
	n.store = st
	return nil
}

// emptyDir: dir holds nothing, or only the serials a standalone node kept
// there (a standalone node made a cluster node).
func emptyDir(dir string) bool {
	es, err := os.ReadDir(dir)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	return len(es) == 0 || len(es) == 1 && es[0].Name() == serialsFile
}

// refuseSecondCluster asks each join peer for its members: one that
// answers with a cluster means this bootstrap node lost its data.
func refuseSecondCluster(cfg *config.Config, dir, token string, t *apiTLS) error {
	for _, peer := range cfg.Node.Join {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ms, err := peerClient(peer, token, t).Members(ctx)
		cancel()
		if err != nil || len(ms) == 0 {
			continue
		}
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
		}
		return fmt.Errorf("%w: node %q has node.bootstrap set and an empty data directory %s, but its peer %s already belongs to a cluster (members %s): this node lost its data. Do not bootstrap a second cluster: remove node.bootstrap, run `tern cluster remove %s` against the cluster if it still lists this node, and start it again to join",
			raftstore.ErrDataDir, cfg.Node.Name, dir, peer, strings.Join(ids, ", "), cfg.Node.Name)
	}
	return nil
}

// peer is a client for another node's API, with the cluster's token (and
// over HTTPS with node.tls).
func (n *Node) peer(addr string) *api.Client { return peerClient(addr, n.token, n.tls) }

// clusterConfig loads a replicated configuration version (from st, which
// holds its files) with this node's own settings (the local file's node
// section) in place of the proposer's.
func (n *Node) clusterConfig(st *raftstore.State, cv raftstore.ConfigVersion) (*config.Config, error) {
	fsys, err := st.FS(cv.Manifest)
	if err != nil {
		return nil, fmt.Errorf("version %d: %w", cv.Version, err)
	}
	return n.fsConfig(fsys, cv.Main)
}

// bundleConfig loads a bundle with this node's own settings.
func (n *Node) bundleConfig(b raftstore.Bundle) (*config.Config, error) {
	return n.fsConfig(b.FS(), b.Main)
}

func (n *Node) fsConfig(fsys fs.FS, main string) (*config.Config, error) {
	c, err := config.LoadFS(fsys, main, main)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	c.Node = n.local.Node
	n.mu.Unlock()
	return c, nil
}

// seedBundle is the bootstrap node's first version, as New read, validated
// and served it.
type seedBundle struct {
	bundle raftstore.Bundle
	zones  map[string]raftstore.ZoneStamp
}

// clusterDigest is a digest of a configuration's cluster-wide part: the
// YAML file (main, its content) decoded without the keys a cluster node
// always takes from its own file (node, and the DNS protection settings
// reconfigureDNS applies: rrl, tsig, transfer), so that comments, layout
// and the node's own settings do not count, and every other file by its
// content hash (m). Two nodes' files that would serve the same have the
// same digest, where their versions' hashes differ by their node
// sections.
func clusterDigest(main []byte, m raftstore.Manifest) raftstore.Hash {
	var y map[string]any
	if yaml.Unmarshal(main, &y) == nil {
		for _, k := range [...]string{"node", "rrl", "tsig", "transfer"} {
			delete(y, k)
		}
		if j, err := json.Marshal(y); err == nil {
			main = j
		}
	}
	d := raftstore.Manifest{Main: "\x00main", Files: make(map[string]raftstore.Hash, len(m.Files))}
	for p, h := range m.Files {
		if p != m.Main {
			d.Files[p] = h
		}
	}
	d.Files[d.Main] = sha256.Sum256(main)
	return d.Hash()
}

// digestCache remembers the cluster digest of the last version asked for.
type digestCache struct {
	hash, digest raftstore.Hash
}

// versionDigestLocked returns clusterDigest of cv, whose files st holds.
func (n *Node) versionDigestLocked(st *raftstore.State, cv raftstore.ConfigVersion) raftstore.Hash {
	if n.digests.hash != cv.Hash {
		main, _ := st.ReadFile(cv.Files[cv.Main]) // a kept version's files are held
		n.digests = digestCache{hash: cv.Hash, digest: clusterDigest(main, cv.Manifest)}
	}
	return n.digests.digest
}

// noteLocalFile records the digest of the local file's cluster-wide part
// (b, its bundle; err when it did not make one) for LocalFileDiffers, and
// reports whether it differs from the cluster's current version.
func (n *Node) noteLocalFile(b raftstore.Bundle, err error) (cur raftstore.ConfigVersion, differs bool) {
	var digest raftstore.Hash
	if err == nil {
		digest = clusterDigest(b.Files[b.Main], b.Manifest())
	}
	st := n.store.State()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.localErr, n.localDigest = err, digest
	cur, _ = st.Config()
	differs, _ = n.localDiffersLocked(st)
	return cur, differs
}

// localDiffersLocked reports whether the local file's cluster-wide part
// differs from st's current version, and the local digest ("" when the
// local file does not load).
func (n *Node) localDiffersLocked(st *raftstore.State) (bool, string) {
	local := ""
	if n.localErr == nil {
		local = n.localDigest.String()
	}
	cur, ok := st.Config()
	if !ok {
		return false, local
	}
	return n.localErr != nil || n.localDigest != n.versionDigestLocked(st, cur), local
}

// localBundle is the cluster-wide configuration of a local file as a
// bundle, secrets redacted (see localFiles).
func (n *Node) localBundle(c *config.Config) (raftstore.Bundle, error) {
	b, err := n.localFiles(c)
	if err != nil {
		return raftstore.Bundle{}, err
	}
	return redactSecrets(b)
}

// localFiles is a local file as `tern apply` sends it: the YAML file and
// every file its zones read, $INCLUDEs too, with paths relative to the
// file's folder (so that messages name "tern.yaml:12" as `tern apply`
// does). It compiles the zones to learn which files they read, through
// the node's zone cache and under the names a replicated version of the
// same files has, so that the version's compile (or New's) takes them
// from the cache; the bytes it returns are the ones it compiled. A zone
// file outside the folder keeps every path as the host's.
func (n *Node) localFiles(c *config.Config) (raftstore.Bundle, error) {
	main, err := fs.ReadFile(c.FS, c.File)
	if err != nil {
		return raftstore.Bundle{}, fmt.Errorf("bundle: read %q: %w", c.Name, err)
	}
	rc := rebased(c, main)
	src := newSourceFS(rc.FS)
	rc.FS = src
	_, used, ps := n.zones.load(rc)
	if len(ps) > 0 {
		return raftstore.Bundle{}, ps
	}
	b := raftstore.Bundle{Main: rc.File, Files: map[string][]byte{rc.File: main}}
	for _, z := range used {
		for _, d := range z.deps {
			data, err := src.read(d.path)
			if err != nil {
				return raftstore.Bundle{}, fmt.Errorf("bundle: read %q: %w", d.path, err)
			}
			b.Files[d.path] = data
		}
	}
	if err := b.Validate(); err != nil {
		return raftstore.Bundle{}, err
	}
	return b, nil
}

// rebased is c read from its file's folder, main its YAML bytes: paths
// and names as a bundle of it has them. c itself when its folder is the
// root or a zone file lies outside it.
func rebased(c *config.Config, main []byte) *config.Config {
	dir := path.Dir(c.File)
	for _, p := range zonePaths(c) {
		if dir == "." && !fs.ValidPath(p) || dir != "." && !strings.HasPrefix(p, dir+"/") {
			return c
		}
	}
	sub, err := fs.Sub(c.FS, dir)
	if err != nil {
		return c
	}
	base := path.Base(c.File)
	rc, ps := config.Parse(base, main)
	if rc == nil || len(ps) > 0 {
		return c // c loaded from these bytes: cannot happen
	}
	rc.FS, rc.File = sub, base
	return rc
}

// addCluster adds the node's cluster tasks to g, after every other part;
// each returns when its context ends. A task's error stops the node:
// joinCluster's (the cluster
// refused this node because it lost its data) and watch's (the log holds
// an entry from a newer Tern: raftstore.ErrNewerFormat). No failure to
// propose or take in a configuration is fatal: it is logged, reported in
// Status.LastConfigError, and the last good configuration keeps serving.
func (n *Node) addCluster(g *run.Group) {
	g.Go("raft", quiet(n.store.Run))
	g.Go("fsm watch", quiet(n.watch))
	g.Go("report", quiet(n.report))
	g.Go("join", quiet(untilStopped(n.joinCluster)))
	g.Go("seed configuration", quiet(untilStopped(n.seedConfig)))
}

// quiet is f, whose error once ctx has ended (a task cut short by the
// stop) is not a failure.
func quiet(f func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		err := f(ctx)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
}

// watch follows the FSM: a new configuration version becomes a new
// generation (one that does not compile here is logged and the current
// one keeps serving); any other change re-resolves the members it changed.
// Between changes it sleeps until the clock alone would change a member's
// state (an observation turning stale: health.Resolver.Next), so nothing
// is rebuilt while nothing changes; out of quorum, where the clock stands,
// it looks once a tick for the quorum to come back.
func (n *Node) watch(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		st, changed := n.store.FSM().Watch()
		if err := n.store.FSM().Halted(); err != nil {
			return fmt.Errorf("stopped: %w", err)
		}
		n.setProbeNodes(st)
		n.follow(ctx, st)
		n.mu.Lock()
		d, ok := n.nextResolveLocked()
		n.mu.Unlock()
		timer.Stop()
		var due <-chan time.Time
		if ok {
			timer.Reset(d)
			due = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-due:
		}
	}
}

// follow takes in st: a new configuration version, or the members whose
// observations or admin states changed.
func (n *Node) follow(ctx context.Context, st *raftstore.State) {
	n.mu.Lock()
	g, failed := n.gen, n.failed
	cv, ok := st.Config()
	if !ok || cv.Index == g.cv.Index || cv.Index == failed {
		n.followStateLocked(st)
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	cfg, err := n.clusterConfig(st, cv)
	var ng *generation
	if err == nil {
		ng, err = n.build(cfg, g)
	}
	if err == nil {
		ng.setVersion(cv)
		err = n.install(ctx, ng)
		if ctx.Err() != nil {
			return
		}
	}
	if err != nil {
		n.log.Error("replicated configuration rejected here; the previous one keeps serving",
			"version", cv.Version, "serving", g.cv.Version, "problems", err.Error())
		n.mu.Lock()
		n.failed = cv.Index
		n.noteConfigLocked(fmt.Sprintf("version %d rejected here (serving version %d): %v", cv.Version, g.cv.Version, err))
		n.followStateLocked(st)
		n.mu.Unlock()
		return
	}
	n.mu.Lock()
	n.followStateLocked(st)
	n.noteConfigLocked("")
	differs, _ := n.localDiffersLocked(st)
	n.mu.Unlock()
	n.log.Info("configuration version applied", "version", cv.Version, "hash", cv.Hash.String()[:12], "local_file_differs", differs)
}

// seedConfig: on the node that bootstrapped the cluster, once it leads and
// while the FSM holds no configuration, propose the bundle New validated
// and serves as version 1 (based on no version: if another one got in
// first, the FSM refuses it). A failed proposal is logged, reported, and
// tried again with backoff until it lands or ctx ends.
func (n *Node) seedConfig(ctx context.Context) error {
	if n.seed == nil {
		return nil
	}
	const poll, maxWait = 200 * time.Millisecond, 10 * time.Second
	wait := poll // after a failed proposal: doubled up to maxWait
	for {
		st, changed := n.store.FSM().Watch()
		if _, ok := st.Config(); ok {
			return nil
		}
		if n.store.IsLeader() {
			// Straight into this store: the seed is never forwarded.
			res, _, err := n.proposeBundle(ctx, n.seed.bundle, raftstore.Change{
				At:     time.Now().UTC(),
				Origin: raftstore.Origin{Kind: raftstore.OriginBootstrap, Node: n.store.ID()},
				Zones:  n.seed.zones,
			}, func(ctx context.Context, b raftstore.Body) (raftstore.Result, error) {
				_, res, err := n.store.Apply(ctx, b)
				return res, err
			})
			switch {
			case err == nil:
				n.log.Info("proposed the validated local configuration as the cluster's first version", "version", res.Version)
				return nil
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, raftstore.ErrStale):
				n.log.Info("the cluster has a configuration already; the bootstrap one is not proposed", "err", err)
				return nil
			}
			n.log.Warn("propose the bootstrap configuration; will retry", "err", err, "in", wait)
			n.setConfigErr(fmt.Sprintf("bootstrap proposal: %v", err))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			wait = min(2*wait, maxWait)
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-time.After(poll):
		}
	}
}

// joinCluster asks the node.join peers, in turn and with backoff, to add
// this node, until one succeeds. A node that is already a member (a
// restart) skips it. A node whose log is empty says so: a cluster that
// still lists its ID refuses it (it lost its data) and the node stops
// with that error.
func (n *Node) joinCluster(ctx context.Context) error {
	n.mu.Lock()
	local := n.local
	n.mu.Unlock()
	if len(local.Node.Join) == 0 {
		return nil
	}
	if ms, err := n.store.Members(); err == nil {
		for _, m := range ms {
			if m.ID == n.store.ID() {
				return nil
			}
		}
	}
	wait := 250 * time.Millisecond
	for {
		for _, peer := range local.Node.Join {
			req := api.JoinRequest{
				ID:       string(n.store.ID()),
				RaftAddr: n.store.RaftAddr(),
				APIAddr:  local.Node.API,
				Fresh:    n.store.Status().LastIndex == 0,
			}
			jctx, cancel := context.WithTimeout(ctx, writeTimeout)
			err := n.peer(peer).Join(jctx, req)
			cancel()
			if err == nil {
				n.log.Info("joined the cluster", "via", peer, "node", req.ID)
				return nil
			}
			var ae *api.Error
			if errors.As(err, &ae) && ae.Status == 409 {
				return fmt.Errorf("join the cluster via %s: %s", peer, ae.Message)
			}
			if ctx.Err() != nil {
				return nil
			}
			n.log.Info("join: not yet", "via", peer, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// forgetGone, on the leader, drops the observations and admin states of
// members that the current configuration no longer has, so that a member
// removed and later added again starts afresh. It acts only when this node
// serves the FSM's current version (a member of a newer one is never
// forgotten for not being in an older one), and looks only when the
// version, the admin states or the set of observed members changed since
// it last did. A dispatcher's servers are never forgotten here: only the
// nodes that run that dispatcher know them (they go with their node).
func (n *Node) forgetGone(ctx context.Context) {
	st := n.store.State()
	n.mu.Lock()
	g := n.gen
	mark := forgetMark{cfg: g.cv.Index, admin: st.Indexes().Admin, observed: st.ObservedCount()}
	cv, ok := st.Config()
	if !ok || cv.Index != g.cv.Index || mark == n.forgot {
		n.mu.Unlock()
		return
	}
	present := make(map[raftstore.MemberKey]bool, len(n.hv.members))
	for _, m := range n.hv.members {
		present[raftstore.MemberKey{Pool: m.Pool, Member: m.Member}] = true
	}
	n.mu.Unlock()
	var gone []raftstore.MemberKey
	for _, k := range st.Observed() {
		if !present[k] && !strings.HasPrefix(k.Pool, dispatcher.CheckPoolPrefix) {
			gone = append(gone, k)
			present[k] = true // once
		}
	}
	for _, a := range st.AdminStates() {
		if !present[a.MemberKey] {
			gone = append(gone, a.MemberKey)
			present[a.MemberKey] = true
		}
	}
	if len(gone) == 0 {
		n.mu.Lock()
		n.forgot = mark
		n.mu.Unlock()
		return
	}
	actx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	if _, _, err := n.store.Apply(actx, raftstore.ForgetMembers{Members: gone}); err != nil {
		n.log.Warn("forget members no longer configured", "count", len(gone), "err", err)
		return
	}
	n.log.Info("forgot members no longer configured", "count", len(gone))
}

// forgetMark is what forgetGone last looked at.
type forgetMark struct {
	cfg, admin uint64
	observed   int
}

// nodeIDs are the registered nodes: every node computes the members'
// probers from the same list at the same log index.
func nodeIDs(st *raftstore.State) []raftstore.NodeID {
	ns := st.Nodes()
	ids := make([]raftstore.NodeID, len(ns))
	for i, x := range ns {
		ids[i] = x.ID
	}
	return ids
}

// clockLocked is the time observations age by: now while this node is in
// quorum, else the last time it was (so that the state it serves while
// cut off stays as it was rather than ageing out into its own view); and
// whether it is in quorum.
func (n *Node) clockLocked() (time.Time, bool) {
	now := time.Now()
	if n.store.Status().InQuorum || n.lastQuorum.IsZero() {
		n.lastQuorum = now
		return now, true
	}
	return n.lastQuorum, false
}

// reloadCluster takes in a new local file's node-local settings: after the
// same validation a proposal gets, its node section (used when the next
// version is loaded) and its DNS protection settings. Its cluster-wide
// part is never proposed; when it differs from the cluster's current
// version the node says so (a log line, Status.LocalFileDiffers), since
// an operator who edited it most likely meant `tern apply`.
func (n *Node) reloadCluster(cfg *config.Config) error {
	n.mu.Lock()
	g := n.gen
	n.mu.Unlock()
	// Validated as a proposal of the file would be (its bundle, through
	// the zone cache), with its own node section and geo database.
	files, err := n.localFiles(cfg)
	if err != nil {
		return err
	}
	bc, err := files.Load(files.Main)
	if err != nil {
		return err
	}
	bc.Node = cfg.Node
	if _, _, ps := n.compileGeo(bc, n.geoFile(cfg), g.geo); len(ps) > 0 {
		return ps
	}
	n.mu.Lock()
	n.local = cfg
	n.mu.Unlock()
	n.reconfigureDNS(cfg)
	n.setConfigErr("")
	b, rerr := redactSecrets(files)
	cur, differs := n.noteLocalFile(b, rerr)
	if differs {
		n.log.Warn("reloaded the node settings; the file's cluster-wide part differs from the cluster's and is NOT applied: send it with `tern apply --config FILE`",
			"cluster_version", cur.Version, "serving", g.cv.Version)
	} else {
		n.log.Info("reloaded the node settings; the file's cluster-wide part is the cluster's current one", "cluster_version", cur.Version)
	}
	return nil
}

// proposeBundle proposes b as a new configuration version: first the
// content the FSM lacks of its files, in pieces (each its own command),
// then the version naming them, all through apply (n.propose, or the
// store itself on the leader). It returns the version's result and the
// bytes of log the change took. When the version is refused for content
// the leader no longer holds (this node's view lagged, or an upload's
// lease ran out), it uploads every file once more and tries again once.
func (n *Node) proposeBundle(ctx context.Context, b raftstore.Bundle, ch raftstore.Change, apply func(context.Context, raftstore.Body) (raftstore.Result, error)) (raftstore.Result, int, error) {
	logBytes := 0
	for attempt := 0; ; attempt++ {
		st := n.store.State()
		if attempt > 0 {
			st = raftstore.NewFSM().State() // holds nothing: plan it all
		}
		puts, ac := st.Upload(b, ch)
		for _, p := range append(bodies(puts), ac) {
			data, err := raftstore.EncodeCommand(p)
			if err != nil {
				return raftstore.Result{}, logBytes, fmt.Errorf("%w: %w", api.ErrInvalid, err)
			}
			logBytes += len(data)
			cctx, cancel := writeContext(ctx) // each piece its own deadline: a big upload is many
			res, err := apply(cctx, p)
			cancel()
			if err == nil {
				if p.Type() == raftstore.TypeApplyConfig {
					n.log.Info("configuration proposed", "version", res.Version, "commands", len(puts)+1, "log_bytes", logBytes)
					return res, logBytes, nil
				}
				continue
			}
			if attempt == 0 && p.Type() == raftstore.TypeApplyConfig && missingContent(err) {
				n.log.Warn("the leader lacks content this node's state holds; uploading all of it", "err", err)
				break
			}
			return res, logBytes, err
		}
	}
}

func bodies(puts []raftstore.PutBlobs) []raftstore.Body {
	out := make([]raftstore.Body, len(puts))
	for i, p := range puts {
		out[i] = p
	}
	return out
}

// missingContent: err is ErrMissingBlob, here or as the leader's API
// said it.
func missingContent(err error) bool {
	var ae *api.Error
	return errors.Is(err, raftstore.ErrMissingBlob) || errors.As(err, &ae) && strings.Contains(ae.Message, raftstore.ErrMissingBlob.Error())
}

// propose commits b: on the leader directly, elsewhere through the
// leader's API, then waits until this node has applied it, so that the
// caller reads its own write. While there is no leader (an election) it
// retries until ctx ends.
func (n *Node) propose(ctx context.Context, b raftstore.Body) (raftstore.Result, error) {
	wait := 50 * time.Millisecond
	for {
		res, err := n.proposeOnce(ctx, b)
		if err == nil || !errors.Is(err, api.ErrUnavailable) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(wait):
		}
		// Short steps: an election takes a second or two and the write
		// should go through as soon as it is over.
		wait = min(2*wait, 250*time.Millisecond)
	}
}

func (n *Node) proposeOnce(ctx context.Context, b raftstore.Body) (raftstore.Result, error) {
	_, res, err := n.store.Apply(ctx, b)
	var nl *raftstore.NotLeaderError
	if !errors.As(err, &nl) {
		return res, apiError(err)
	}
	if nl.LeaderAPI == "" || nl.LeaderID == n.store.ID() {
		return res, apiError(err)
	}
	data, err := raftstore.EncodeCommand(b)
	if err != nil {
		return res, err
	}
	cr, err := n.peer(nl.LeaderAPI).ApplyCommand(ctx, data)
	if errors.Is(err, syscall.ECONNREFUSED) {
		// The leader this node knows is gone and nothing was sent: an
		// election is under way, try again.
		err = fmt.Errorf("%w: %w", api.ErrUnavailable, err)
	}
	if err != nil {
		return res, fmt.Errorf("forward %s to the leader %s at %s: %w", b.Type(), nl.LeaderID, nl.LeaderAPI, apiError(err))
	}
	if err := n.store.WaitApplied(ctx, cr.Index); err != nil {
		return res, fmt.Errorf("%w: committed at index %d but not yet applied here: %v", api.ErrUnavailable, cr.Index, err)
	}
	return raftstore.Result{Index: cr.Index, Changed: cr.Changed, Version: cr.Version}, nil
}

// apiError maps store errors, and errors forwarded from another node's
// API, to the API's error kinds: the one place that does.
func apiError(err error) error {
	var ae *api.Error
	kind := error(nil)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		switch ae.Status {
		case 400:
			kind = api.ErrInvalid
		case 404:
			kind = api.ErrNotFound
		case 409:
			kind = api.ErrConflict
		case 503:
			kind = api.ErrUnavailable
		}
	case errors.Is(err, raftstore.ErrNotLeader), errors.Is(err, raftstore.ErrClosed):
		kind = api.ErrUnavailable
	case errors.Is(err, raftstore.ErrStale), errors.Is(err, raftstore.ErrMissingBlob):
		kind = api.ErrConflict
	case errors.Is(err, raftstore.ErrBlobMismatch), errors.Is(err, raftstore.ErrBlobSpace):
		kind = api.ErrInvalid
	case errors.Is(err, raftstore.ErrNoSuchVersion), errors.Is(err, raftstore.ErrUnknownNode):
		kind = api.ErrNotFound
	case errors.Is(err, raftstore.ErrMalformed), errors.Is(err, raftstore.ErrUnknownCommand), errors.Is(err, raftstore.ErrUnsupportedVersion):
		kind = api.ErrInvalid
	case errors.Is(err, context.DeadlineExceeded):
		kind = api.ErrUnavailable
	}
	if kind == nil || errors.Is(err, kind) {
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}

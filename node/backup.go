package node

import (
	"context"
	"errors"
	"io"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/raftstore"
)

// apiSnapshots serves GET /v1/snapshot: the leader writes the backup; a
// follower fetches it from the leader's API, so that any node can be
// asked.
type apiSnapshots struct{ n *Node }

func (a apiSnapshots) Backup(ctx context.Context, w io.Writer) error {
	n := a.n
	_, err := n.store.Backup(ctx, w)
	var nl *raftstore.NotLeaderError
	if !errors.As(err, &nl) || nl.LeaderAPI == "" || nl.LeaderID == n.store.ID() {
		return apiError(err)
	}
	return apiError(n.peer(nl.LeaderAPI).Snapshot(ctx, w))
}

var _ api.Snapshotter = apiSnapshots{}

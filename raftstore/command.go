package raftstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ternlb/tern/health"
)

// CommandVersion is the envelope version this package writes. It also
// reads version 1, written before configuration changes named the version
// they were based on, and version 2, whose config.apply carried its files
// inline (see DecodeCommand).
const CommandVersion = 3

// Limits on what a command may carry. They bound what one log entry can do
// to every node's memory; file content travels in pieces of at most
// MaxPutBytes (see PutBlobs).
const (
	MaxCommandSize = 16 << 20 // bytes of one encoded command
	MaxBundleFiles = 4096
	MaxKeep        = 1000 // configuration versions kept at most
	DefaultKeep    = 10   // configuration versions kept unless told
	maxName        = 255  // bytes of a pool, member, node ID or address
)

// Command type names, as they appear in the envelope.
const (
	TypeApplyConfig   = "config.apply"
	TypeRollback      = "config.rollback"
	TypeSetAdmin      = "admin.set"
	TypeObservations  = "observations"
	TypeRegisterNode  = "node.register"
	TypeForgetNode    = "node.forget"
	TypeForgetMembers = "member.forget"
	TypePutBlobs      = "blob.put"
)

// Body is the payload of one command: one of the types below.
type Body interface {
	// Type is the envelope's type name.
	Type() string
	validate() error
}

// NodeID names a node: its Raft server ID (node.name in the configuration).
type NodeID string

// MemberKey names a pool member.
type MemberKey struct {
	Pool   string `json:"pool"`
	Member string `json:"member"`
}

func (k MemberKey) validate() error {
	if err := checkName("pool", k.Pool); err != nil {
		return err
	}
	return checkName("member", k.Member)
}

// AdminState is an operator's override of a member's health.
type AdminState string

// Admin states. Auto (the default) follows the health checks; Up and Down
// force the member's state; Drain keeps it out of new answers while it
// stays healthy for those that still hold it.
const (
	AdminAuto  AdminState = "auto"
	AdminUp    AdminState = "up"
	AdminDown  AdminState = "down"
	AdminDrain AdminState = "drain"
)

// ParseAdminState returns the admin state named s: auto, up, down, drain
// or shed:PERCENT (1 to 99 of the member's clients sent elsewhere;
// shed:100 is drain), in its canonical spelling.
func ParseAdminState(s string) (AdminState, error) {
	switch a := AdminState(s); a {
	case AdminAuto, AdminUp, AdminDown, AdminDrain:
		return a, nil
	}
	if strings.HasPrefix(s, "shed:") {
		if a, err := health.ParseAdmin(s); err == nil {
			return AdminState(a.String()), nil
		}
	}
	return "", fmt.Errorf("admin state %q: want auto, up, down, drain or shed:PERCENT (1 to 100)", s)
}

// ApplyConfig proposes a new configuration version: its files by content
// hash. Every file must be held whole once Blobs are stored (uploaded
// before by PutBlobs, or named by a kept version), else the command is
// refused with ErrMissingBlob. A manifest identical (same hash) to the
// current version's changes nothing, whatever its Base (so a retried
// proposal that already went in is not refused).
type ApplyConfig struct {
	Manifest
	// Blobs is content carried inside the command, stored before the
	// files are checked: a small configuration's whole, or the last
	// pieces of a big one's (see State.Upload). Every file in it must be
	// one the manifest names, and every chunk one of its files'.
	Blobs PutBlobs `json:"blobs,omitzero"`
	Change
}

// Rollback re-applies a kept configuration version as a new version, with
// the same Base check as ApplyConfig. Zones, when set, are the re-applied
// bundle's zones as the proposer compiled them; else the FSM takes those
// the version recorded.
type Rollback struct {
	Version uint64 `json:"version"`
	Change
}

// Change is what ApplyConfig and Rollback carry besides their content (its
// fields are the bodies' own in JSON).
type Change struct {
	// Base is the version the proposer based the change on (0: the
	// cluster had none). Unless Force is set, the command fails with
	// ErrStale when Base is not the current version: a file edited from
	// an old version never silently replaces a newer one.
	Base  uint64 `json:"base"`
	Force bool   `json:"force,omitempty"`
	// Keep is how many versions to keep from now on (0: DefaultKeep).
	Keep int `json:"keep,omitempty"`
	// At is when the operator made the change, by the proposer's clock.
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
	Origin  Origin    `json:"origin,omitzero"`
	// Zones are the new version's zones, by name, as the proposer
	// compiled them (see ZoneStamp); the FSM derives the serials the
	// version serves from them (see NextSerials).
	Zones map[string]ZoneStamp `json:"zones,omitempty"`
}

// Origin says where a configuration version came from.
type Origin struct {
	Kind OriginKind `json:"kind"`
	// Node is the node that validated and proposed it.
	Node NodeID `json:"node,omitempty"`
	// Client is the remote address of the API client that sent it (tern
	// apply, tern config rollback); empty for a node's own proposal.
	Client string `json:"client,omitempty"`
}

// OriginKind is how a configuration version was made.
type OriginKind string

// Origin kinds.
const (
	OriginBootstrap OriginKind = "bootstrap" // the bootstrap node's validated file
	OriginApply     OriginKind = "apply"     // tern apply (POST /v1/config)
	OriginRollback  OriginKind = "rollback"  // tern config rollback
)

func (o Origin) validate() error {
	switch o.Kind {
	case "", OriginBootstrap, OriginApply, OriginRollback:
	default:
		return fmt.Errorf("origin kind %q: want bootstrap, apply or rollback", o.Kind)
	}
	if o.Node != "" {
		if err := checkName("origin node", string(o.Node)); err != nil {
			return err
		}
	}
	if o.Client != "" {
		return checkName("origin client", o.Client)
	}
	return nil
}

// applyConfigV2 is config.apply in envelope version 2: the files inline.
// DecodeCommand turns it into an ApplyConfig carrying them (inlineConfig).
type applyConfigV2 struct {
	Bundle Bundle `json:"bundle"`
	Change
}

func (c applyConfigV2) current() Body { return inlineConfig(c.Bundle, c.Change) }

// applyConfigV1 and rollbackV1 are the bodies of envelope version 1: a
// non-zero if_version was a compare-and-swap, zero applied whatever the
// current version. DecodeCommand turns them into the current types with
// the same meaning (Base if_version, or Force), so that a log written then
// replays to the same state.
type applyConfigV1 struct {
	Bundle    Bundle    `json:"bundle"`
	IfVersion uint64    `json:"if_version,omitempty"`
	Keep      int       `json:"keep,omitempty"`
	At        time.Time `json:"at"`
	Comment   string    `json:"comment,omitempty"`
}

type rollbackV1 struct {
	Version   uint64    `json:"version"`
	IfVersion uint64    `json:"if_version,omitempty"`
	Keep      int       `json:"keep,omitempty"`
	At        time.Time `json:"at"`
	Comment   string    `json:"comment,omitempty"`
}

func (c applyConfigV1) current() Body {
	return inlineConfig(c.Bundle, v1Change(c.IfVersion, c.Keep, c.At, c.Comment))
}

func (c rollbackV1) current() Body {
	return Rollback{Version: c.Version, Change: v1Change(c.IfVersion, c.Keep, c.At, c.Comment)}
}

func v1Change(ifVersion uint64, keep int, at time.Time, comment string) Change {
	return Change{Base: ifVersion, Force: ifVersion == 0, Keep: keep, At: at, Comment: comment}
}

// SetAdmin sets the admin state of members, all or none.
type SetAdmin struct {
	States []AdminChange `json:"states"`
}

// AdminChange is one member's new admin state; AdminAuto clears an override.
type AdminChange struct {
	Pool   string     `json:"pool"`
	Member string     `json:"member"`
	State  AdminState `json:"state"`
}

// Observations is one node's batch of observations of members, of any
// kind (health.KindHealth: 1 up, 0 down; health.KindLoad: the smoothed
// load a load check read; more kinds to come). An observation older than
// the one held for the same (node, kind, member) is ignored, so batches
// that arrive out of order cannot undo a newer one; of two at the same
// time the greater value is kept (health.Supersedes).
type Observations struct {
	Node    NodeID              `json:"node"`
	Reports []ObservationReport `json:"reports"`
}

// ObservationReport is one observation of one member.
type ObservationReport struct {
	Pool   string      `json:"pool"`
	Member string      `json:"member"`
	Kind   health.Kind `json:"kind"`
	Value  float64     `json:"value"`
	At     time.Time   `json:"at"` // when the probe that made it started
}

// verdictsV1 and loadsV1 are the health.verdicts and load.report commands
// written before every kind of observation was one command. DecodeCommand
// reads them as Observations of kind health (1 up, 0 down) and load (the
// capacity they carried is dropped: nothing read it), so that an old log
// replays to the same observations.
type verdictsV1 struct {
	Node     NodeID `json:"node"`
	Verdicts []struct {
		Pool   string    `json:"pool"`
		Member string    `json:"member"`
		Health string    `json:"health"`
		At     time.Time `json:"at"`
	} `json:"verdicts"`
}

type loadsV1 struct {
	Node  NodeID `json:"node"`
	Loads []struct {
		Pool     string    `json:"pool"`
		Member   string    `json:"member"`
		Load     float64   `json:"load"`
		Capacity float64   `json:"capacity"`
		At       time.Time `json:"at"`
	} `json:"loads"`
}

// Type names of the commands verdictsV1 and loadsV1 decode.
const (
	typeVerdictsV1 = "health.verdicts"
	typeLoadsV1    = "load.report"
)

func (c verdictsV1) current() (Body, error) {
	o := Observations{Node: c.Node, Reports: make([]ObservationReport, len(c.Verdicts))}
	for i, v := range c.Verdicts {
		var value float64
		switch v.Health {
		case "up":
			value = 1
		case "down":
		default:
			return nil, fmt.Errorf("verdicts[%d]: health %q: want up or down", i, v.Health)
		}
		o.Reports[i] = ObservationReport{Pool: v.Pool, Member: v.Member, Kind: health.KindHealth, Value: value, At: v.At}
	}
	return o, nil
}

func (c loadsV1) current() (Body, error) {
	o := Observations{Node: c.Node, Reports: make([]ObservationReport, len(c.Loads))}
	for i, l := range c.Loads {
		if !finite(l.Capacity) || l.Capacity < 0 {
			return nil, fmt.Errorf("loads[%d]: capacity must be finite and not negative", i)
		}
		o.Reports[i] = ObservationReport{Pool: l.Pool, Member: l.Member, Kind: health.KindLoad, Value: l.Load, At: l.At}
	}
	return o, nil
}

// RegisterNode records a node's Raft and API addresses.
type RegisterNode struct {
	ID   NodeID `json:"id"`
	Raft string `json:"raft"`
	API  string `json:"api"`
}

// ForgetNode drops a node from the registry with all its observations
// (after it left the cluster).
type ForgetNode struct {
	ID NodeID `json:"id"`
}

// ForgetMembers drops the observations and admin states of members (after
// they left the configuration).
type ForgetMembers struct {
	Members []MemberKey `json:"members"`
}

func (ApplyConfig) Type() string   { return TypeApplyConfig }
func (Rollback) Type() string      { return TypeRollback }
func (SetAdmin) Type() string      { return TypeSetAdmin }
func (Observations) Type() string  { return TypeObservations }
func (RegisterNode) Type() string  { return TypeRegisterNode }
func (ForgetNode) Type() string    { return TypeForgetNode }
func (ForgetMembers) Type() string { return TypeForgetMembers }

func (c ApplyConfig) validate() error {
	if err := c.Manifest.validate(); err != nil {
		return err
	}
	if !c.Blobs.empty() {
		if err := c.Blobs.validate(); err != nil {
			return fmt.Errorf("blobs: %w", err)
		}
		named := map[Hash]bool{}
		for _, h := range c.Files {
			named[h] = true
		}
		inFiles := map[Hash]bool{}
		for i, f := range c.Blobs.Files {
			if !named[f.Hash] {
				return fmt.Errorf("blobs: files[%d] %s: not a file of this version", i, f.Hash)
			}
			for _, ch := range f.Chunks {
				inFiles[ch] = true
			}
		}
		for i, ch := range c.Blobs.Chunks {
			if !inFiles[ch.Hash] {
				return fmt.Errorf("blobs: chunks[%d] %s: not a chunk of the files carried", i, ch.Hash)
			}
		}
	}
	return c.Change.validate()
}

func (c Rollback) validate() error {
	if c.Version == 0 {
		return errors.New("version: missing")
	}
	return c.Change.validate()
}

func (c Change) validate() error {
	if err := checkKeep(c.Keep); err != nil {
		return err
	}
	if err := checkText("comment", c.Comment); err != nil {
		return err
	}
	if err := c.Origin.validate(); err != nil {
		return err
	}
	if len(c.Zones) > MaxBundleFiles {
		return fmt.Errorf("zones: %d, more than %d", len(c.Zones), MaxBundleFiles)
	}
	for name := range c.Zones {
		if err := checkName("zone", name); err != nil {
			return err
		}
	}
	return checkTime("at", c.At)
}

func (c SetAdmin) validate() error {
	if len(c.States) == 0 {
		return errors.New("states: empty")
	}
	for i, s := range c.States {
		if err := (MemberKey{s.Pool, s.Member}).validate(); err != nil {
			return fmt.Errorf("states[%d]: %w", i, err)
		}
		a, err := ParseAdminState(string(s.State))
		if err != nil {
			return fmt.Errorf("states[%d]: %w", i, err)
		}
		if a != s.State {
			return fmt.Errorf("states[%d]: admin state %q: write it %q", i, s.State, a)
		}
	}
	return nil
}

func (c Observations) validate() error {
	if err := checkName("node", string(c.Node)); err != nil {
		return err
	}
	if len(c.Reports) == 0 {
		return errors.New("reports: empty")
	}
	for i, r := range c.Reports {
		if err := (MemberKey{r.Pool, r.Member}).validate(); err != nil {
			return fmt.Errorf("reports[%d]: %w", i, err)
		}
		if err := checkObservation(r.Kind, r.Value); err != nil {
			return fmt.Errorf("reports[%d]: %w", i, err)
		}
		if err := checkTime("at", r.At); err != nil {
			return fmt.Errorf("reports[%d]: %w", i, err)
		}
	}
	return nil
}

// maxKind is the longest kind name, in bytes.
const maxKind = 32

// checkObservation checks a kind's name (lower-case letters, digits and
// '-', the set open to kinds to come) and its value: finite, 0 or 1 for
// health, not negative for load.
func checkObservation(kind health.Kind, v float64) error {
	if kind == "" || len(kind) > maxKind {
		return fmt.Errorf("kind %q: want 1 to %d bytes", kind, maxKind)
	}
	for _, r := range kind {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return fmt.Errorf("kind %q: want lower-case letters, digits and '-'", kind)
		}
	}
	switch {
	case !finite(v):
		return fmt.Errorf("%s value: not finite", kind)
	case kind == health.KindHealth && v != 0 && v != 1:
		return fmt.Errorf("health value %v: want 1 (up) or 0 (down)", v)
	case kind == health.KindLoad && v < 0:
		return fmt.Errorf("load value %v: negative", v)
	case kind == health.KindLatency && v < 0:
		return fmt.Errorf("latency value %v: negative", v)
	}
	return nil
}

func (c RegisterNode) validate() error {
	if err := checkName("id", string(c.ID)); err != nil {
		return err
	}
	if err := checkName("raft", c.Raft); err != nil {
		return err
	}
	if c.API == "" {
		return nil // a node may have no API (it cannot take forwarded writes)
	}
	return checkName("api", c.API)
}

func (c ForgetNode) validate() error { return checkName("id", string(c.ID)) }

func (c ForgetMembers) validate() error {
	if len(c.Members) == 0 {
		return errors.New("members: empty")
	}
	for i, m := range c.Members {
		if err := m.validate(); err != nil {
			return fmt.Errorf("members[%d]: %w", i, err)
		}
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s: missing", what)
	case len(s) > maxName:
		return fmt.Errorf("%s: longer than %d bytes", what, maxName)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s: not UTF-8", what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q: control character", what, s)
		}
	}
	return nil
}

func checkText(what, s string) error {
	if len(s) > 4096 {
		return fmt.Errorf("%s: longer than 4096 bytes", what)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: not UTF-8", what)
	}
	return nil
}

func checkKeep(k int) error {
	if k < 0 || k > MaxKeep {
		return fmt.Errorf("keep %d: want 0 (default %d) to %d", k, DefaultKeep, MaxKeep)
	}
	return nil
}

// Times in commands are the proposer's clock. They must be real dates so
// that every node stores exactly the same instant (normalised to UTC, no
// monotonic reading).
func checkTime(what string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("%s: missing", what)
	}
	if y := t.Year(); y < 1970 || y > 2200 {
		return fmt.Errorf("%s %s: year out of range", what, t.Format(time.RFC3339))
	}
	return nil
}

func normTime(t time.Time) time.Time { return time.Unix(0, t.UnixNano()).UTC() }

type envelope struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// EncodeCommand validates b and returns its envelope, ready for Store.Apply
// or to be forwarded to the leader.
func EncodeCommand(b Body) ([]byte, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: no body", ErrMalformed)
	}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, b.Type(), err)
	}
	body, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", b.Type(), err)
	}
	data, err := json.Marshal(envelope{V: CommandVersion, Type: b.Type(), Body: body})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", b.Type(), err)
	}
	if len(data) > MaxCommandSize {
		return nil, fmt.Errorf("%w: %s: %d bytes, more than %d", ErrMalformed, b.Type(), len(data), MaxCommandSize)
	}
	return data, nil
}

// DecodeCommand decodes and validates one command envelope strictly: an
// unknown field, trailing data, invalid UTF-8, an unknown version or type
// or a body that does not validate is an error (ErrMalformed,
// ErrUnsupportedVersion or ErrUnknownCommand).
func DecodeCommand(data []byte) (Body, error) {
	if len(data) > MaxCommandSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(data), MaxCommandSize)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrMalformed)
	}
	var env envelope
	if err := strictUnmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %w", ErrMalformed, err)
	}
	if env.V > CommandVersion {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedVersion, newerFormat("command envelope", env.V, CommandVersion))
	}
	if env.V < 1 {
		return nil, fmt.Errorf("%w: %d (this node reads 1 to %d)", ErrUnsupportedVersion, env.V, CommandVersion)
	}
	var into any
	switch env.Type {
	case TypeApplyConfig:
		switch env.V {
		case 1:
			into = new(applyConfigV1)
		case 2:
			into = new(applyConfigV2)
		default:
			into = new(ApplyConfig)
		}
	case TypeRollback:
		into = new(Rollback)
		if env.V == 1 {
			into = new(rollbackV1)
		}
	case TypeSetAdmin:
		into = new(SetAdmin)
	case TypeObservations:
		into = new(Observations)
	case typeVerdictsV1:
		into = new(verdictsV1)
	case typeLoadsV1:
		into = new(loadsV1)
	case TypeRegisterNode:
		into = new(RegisterNode)
	case TypeForgetNode:
		into = new(ForgetNode)
	case TypeForgetMembers:
		into = new(ForgetMembers)
	case TypePutBlobs:
		into = new(PutBlobs)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownCommand, env.Type)
	}
	if len(env.Body) == 0 || bytes.Equal(env.Body, []byte("null")) {
		return nil, fmt.Errorf("%w: %s: missing body", ErrMalformed, env.Type)
	}
	if err := strictUnmarshal(env.Body, into); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, env.Type, err)
	}
	b, err := deref(into)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, env.Type, err)
	}
	if b == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownCommand, env.Type)
	}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, env.Type, err)
	}
	return b, nil
}

// deref returns the value behind the pointer DecodeCommand decoded into
// (an older body as the current type), so that callers switch on value
// types only.
func deref(b any) (Body, error) {
	switch p := b.(type) {
	case *applyConfigV1:
		return p.current(), nil
	case *applyConfigV2:
		return p.current(), nil
	case *rollbackV1:
		return p.current(), nil
	case *verdictsV1:
		return p.current()
	case *loadsV1:
		return p.current()
	case *ApplyConfig:
		return *p, nil
	case *Rollback:
		return *p, nil
	case *SetAdmin:
		return *p, nil
	case *Observations:
		return *p, nil
	case *RegisterNode:
		return *p, nil
	case *ForgetNode:
		return *p, nil
	case *ForgetMembers:
		return *p, nil
	case *PutBlobs:
		return *p, nil
	}
	return nil, nil
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

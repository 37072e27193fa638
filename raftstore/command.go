package raftstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
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
	TypeVerdicts      = "health.verdicts"
	TypeLoads         = "load.report"
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

// ParseAdminState returns the admin state named s.
func ParseAdminState(s string) (AdminState, error) {
	switch a := AdminState(s); a {
	case AdminAuto, AdminUp, AdminDown, AdminDrain:
		return a, nil
	}
	return "", fmt.Errorf("admin state %q: want auto, up, down or drain", s)
}

// Health is a verdict as written in a command: "up" or "down".
type Health string

// Health values.
const (
	HealthUp   Health = "up"
	HealthDown Health = "down"
)

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

// Verdicts is one node's batch of health verdicts. A verdict older than the
// one held for the same (node, pool, member) is ignored, so batches that
// arrive out of order cannot undo a newer observation.
type Verdicts struct {
	Node     NodeID          `json:"node"`
	Verdicts []VerdictReport `json:"verdicts"`
}

// VerdictReport is one observation of one member.
type VerdictReport struct {
	Pool   string    `json:"pool"`
	Member string    `json:"member"`
	Health Health    `json:"health"`
	At     time.Time `json:"at"`
}

// Loads is one node's batch of load reports; older reports than the held
// ones are ignored as for Verdicts.
type Loads struct {
	Node  NodeID       `json:"node"`
	Loads []LoadReport `json:"loads"`
}

// LoadReport is one member's load as seen by one node: Load out of
// Capacity (Capacity 0: unknown), in whatever unit the agent reports.
type LoadReport struct {
	Pool     string    `json:"pool"`
	Member   string    `json:"member"`
	Load     float64   `json:"load"`
	Capacity float64   `json:"capacity"`
	At       time.Time `json:"at"`
}

// RegisterNode records a node's Raft and API addresses.
type RegisterNode struct {
	ID   NodeID `json:"id"`
	Raft string `json:"raft"`
	API  string `json:"api"`
}

// ForgetNode drops a node from the registry with all its verdicts and load
// reports (after it left the cluster).
type ForgetNode struct {
	ID NodeID `json:"id"`
}

// ForgetMembers drops the verdicts, load reports and admin states of members
// (after they left the configuration).
type ForgetMembers struct {
	Members []MemberKey `json:"members"`
}

func (ApplyConfig) Type() string   { return TypeApplyConfig }
func (Rollback) Type() string      { return TypeRollback }
func (SetAdmin) Type() string      { return TypeSetAdmin }
func (Verdicts) Type() string      { return TypeVerdicts }
func (Loads) Type() string         { return TypeLoads }
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
		if _, err := ParseAdminState(string(s.State)); err != nil {
			return fmt.Errorf("states[%d]: %w", i, err)
		}
	}
	return nil
}

func (c Verdicts) validate() error {
	if err := checkName("node", string(c.Node)); err != nil {
		return err
	}
	if len(c.Verdicts) == 0 {
		return errors.New("verdicts: empty")
	}
	for i, v := range c.Verdicts {
		if err := (MemberKey{v.Pool, v.Member}).validate(); err != nil {
			return fmt.Errorf("verdicts[%d]: %w", i, err)
		}
		if v.Health != HealthUp && v.Health != HealthDown {
			return fmt.Errorf("verdicts[%d]: health %q: want up or down", i, v.Health)
		}
		if err := checkTime("at", v.At); err != nil {
			return fmt.Errorf("verdicts[%d]: %w", i, err)
		}
	}
	return nil
}

func (c Loads) validate() error {
	if err := checkName("node", string(c.Node)); err != nil {
		return err
	}
	if len(c.Loads) == 0 {
		return errors.New("loads: empty")
	}
	for i, l := range c.Loads {
		if err := (MemberKey{l.Pool, l.Member}).validate(); err != nil {
			return fmt.Errorf("loads[%d]: %w", i, err)
		}
		if !finite(l.Load) || l.Load < 0 || !finite(l.Capacity) || l.Capacity < 0 {
			return fmt.Errorf("loads[%d]: load and capacity must be finite and not negative", i)
		}
		if err := checkTime("at", l.At); err != nil {
			return fmt.Errorf("loads[%d]: %w", i, err)
		}
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
	if env.V < 1 || env.V > CommandVersion {
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
	case TypeVerdicts:
		into = new(Verdicts)
	case TypeLoads:
		into = new(Loads)
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
	b := deref(into)
	if b == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownCommand, env.Type)
	}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, env.Type, err)
	}
	return b, nil
}

// deref returns the value behind the pointer DecodeCommand decoded into
// (a version 1 body as the current type), so that callers switch on value
// types only.
func deref(b any) Body {
	switch p := b.(type) {
	case *applyConfigV1:
		return p.current()
	case *applyConfigV2:
		return p.current()
	case *rollbackV1:
		return p.current()
	case *ApplyConfig:
		return *p
	case *Rollback:
		return *p
	case *SetAdmin:
		return *p
	case *Verdicts:
		return *p
	case *Loads:
		return *p
	case *RegisterNode:
		return *p
	case *ForgetNode:
		return *p
	case *ForgetMembers:
		return *p
	case *PutBlobs:
		return *p
	}
	return nil
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

// Package zones turns RFC 1035 zone files into validated, immutable zone
// trees that the DNS server answers from without taking a lock.
//
// A zone file is read through an fs.FS (the configuration's, so embedded
// configurations work) with miekg/dns's ZoneParser: $ORIGIN, $TTL,
// $GENERATE and $INCLUDE are supported. An $INCLUDE path is relative to the
// including file and must stay inside the directory of the zone file the
// configuration names (or below it): `$INCLUDE ../secret` or an absolute
// path elsewhere is a problem at the directive's line, so a zone file cannot
// quietly read arbitrary files. (Symbolic links are followed as the fs.FS
// follows them; os.DirFS does.) Includes nest at most 7 deep.
//
// The zone's name is the origin given in the configuration, or else the
// owner of the file's SOA record.
// Tern's own record type POOL (see RegisterPOOL) names a pool of the
// configuration: `www 30 IN POOL web` answers A and AAAA for www from pool
// web. POOL names are resolved to indexes into config.Config.PoolNames when
// the zone loads, so a bad reference is an error at load time, never at
// query time. A zone keeps the names it resolved (a small table of its
// own, which its records index), so Zone.Repool resolves it against
// another pool list without parsing it again.
//
// Loading validates the whole zone and reports every problem found as a
// config.Problem with the file and line of the record at fault: the SOA
// (exactly one, at the apex), apex NS records, CNAMEs beside other data,
// data outside the zone, POOL records (unknown pool, more than one at a
// name, beside A, AAAA or CNAME), data occluded by a delegation, RRsets
// whose TTLs disagree, classes other than IN, records without data, DNAME
// (not implemented, so refused rather than served wrongly), and the
// parser's own syntax errors. miekg/dns stops at the first syntax error of
// a zone; the problems found in the records before it are still reported.
//
// Once loaded, a Zone and a Set never change. A zone is compiled into a
// compact form as its records stream out of the parser, as Knot DNS and
// NSD hold theirs: owner names in canonical (lowercase) form in one
// string, each name once (a parent's name is the tail of its child's);
// RRsets grouped by type, their records sorted, as wire rdata in one byte
// slice; names and RRsets as small fixed-size structures that refer to
// those by offset; a hash index from name to node. None of it holds a
// pointer, so the garbage collector does not scan a zone however large.
// The parsed dns.RR values are dropped as they are read, and what only
// validation needs (each record's file and line) when the zone is built.
// The parser and the compiler run in two goroutines of one Load, the
// records handed over in small batches; the compiler sorts names into
// canonical order in runs while the parser reads on.
// Wildcard and delegation information is precomputed, so Lookup reads
// only and allocates nothing: its Result holds views (RRset, RRsets) of
// the zone's memory, read with All (wire form, no allocation) or decoded
// into dns.RR values with RRs. Zone.All and Zone.RRsets walk a whole zone
// in canonical order without allocating; Zone.Records decodes it all.
//
// A Set precomputes, when it is made, the additional-section data of
// every NS, MX and SRV RRset it serves (RFC 1035 4.3.2 step 6): the A and
// AAAA RRsets it serves for the targets, in any of its zones, by exact
// name, kept as references to those RRsets. Targets under a delegation, aliases, wildcard matches and POOL
// names are left out (a POOL name's answer depends on health and the
// client: the resolver asks for it). Set.Lookup hands them out in
// Result.Additional. A referral's glue lists in-domain glue (names below
// the cut, which RFC 9471 requires) before sibling glue
// (Result.InDomainGlue counts it).
//
// DS at the apex of a served zone whose parent zone the Set also serves
// is answered from the parent when the parent delegates the name (NS
// records there), else from the child: NODATA with the child's SOA, not
// the parent's NXDOMAIN for a name that exists (RFC 4035 3.1.4.1).
// Set.Warnings reports such a child without a delegation in its served
// parent, at the child's SOA record: legal, but resolvers that start from
// the parent never find the child. tern check prints warnings and still
// passes.
//
// # Imports
//
// Tern packages: config (for Config and Problem).
package zones

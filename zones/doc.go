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
// query time.
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
// Once loaded, a Zone and a Set never change: owner names are stored in
// canonical (lowercase) form, RRsets are grouped by type and sorted, and
// wildcard and delegation information is precomputed, so Lookup reads only
// and allocates nothing. Callers must not modify the dns.RR values a Zone
// hands out.
//
// zones is a leaf package: it imports config (for Config and Problem) and no
// other Tern package.
package zones

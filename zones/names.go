package zones

import (
	"strings"
	"unsafe"

	"github.com/miekg/dns"
)

// maxName bounds a name lowercased on the stack. Wire names are at most
// 255 octets; escapes (\DDD) make the text of odd ones longer, and those
// take the slow path (one allocation).
const maxName = 256

// needsFold reports whether qname must be lowercased or made absolute
// before lookup.
func needsFold(qname string) bool {
	for i := 0; i < len(qname); i++ {
		if c := qname[i]; 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return !isFqdn(qname)
}

// folded returns qname lowercased and absolute: qname itself when it is
// already, else a string sharing buf.
func folded(buf *[maxName]byte, qname string) string {
	if !needsFold(qname) {
		return qname
	}
	b := lower(buf, qname)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// lower writes name lowercased (ASCII only, as DNS compares) and absolute
// into buf, or into a new slice when it does not fit.
func lower(buf *[maxName]byte, name string) []byte {
	n := len(name)
	fqdn := isFqdn(name)
	b := buf[:]
	if n+1 > len(b) {
		b = make([]byte, n+1)
	}
	for i := 0; i < n; i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	if !fqdn {
		b[n] = '.'
		n++
	}
	return b[:n]
}

// isFqdn reports whether name ends in an unescaped dot.
func isFqdn(name string) bool {
	if name == "" || name[len(name)-1] != '.' {
		return false
	}
	// Count the backslashes before the final dot: an odd count escapes it.
	i := len(name) - 2
	for i >= 0 && name[i] == '\\' {
		i--
	}
	return (len(name)-2-i)%2 == 0
}

// parent returns the offset in name (absolute, presentation form) where
// the name one label shorter starts; for the root "." it returns -1.
// Escaped dots (\.) do not end a label.
func parent(name string, off int) int {
	if off >= len(name) || (len(name)-off == 1 && name[off] == '.') {
		return -1
	}
	for i := off; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++ // skip the escaped byte; \DDD digits are never dots
		case '.':
			if i+1 == len(name) {
				return i // the root
			}
			return i + 1
		}
	}
	return -1
}

// isSubdomain reports whether child is parent or below it; both canonical.
func isSubdomain(child, parent string) bool {
	if parent == "." || child == parent {
		return true
	}
	if !strings.HasSuffix(child, parent) {
		return false
	}
	// The suffix must start at a label boundary.
	i := len(child) - len(parent)
	if child[i-1] != '.' {
		return false
	}
	// ... and that dot must not be escaped.
	j := i - 2
	for j >= 0 && child[j] == '\\' {
		j--
	}
	return (i-2-j)%2 == 0
}

// sortKey returns a string whose byte order is the canonical order of
// names (RFC 4034 section 6.1: label by label from the root, each label
// compared as a lowercase octet string, a shorter label first). Each label
// is written from the root down, its bytes 0x00 and 0x01 escaped as 0x01
// 0x00 and 0x01 0x01, then a 0x00 ends it: so a label sorts before every
// longer label it is a prefix of, and escaping keeps the order of bytes.
func sortKey(name string) string { return string(appendSortKey(nil, name)) }

// compareNames orders canonical names as RFC 4034 section 6.1 does.
func compareNames(a, b string) int {
	if a == b {
		return 0
	}
	return strings.Compare(sortKey(a), sortKey(b))
}

// canonical returns name as an absolute, lowercase name in miekg/dns's
// presentation form, with escapes normalised by a round trip through the
// wire format (so `\065` and `a` are the same owner). ok is false when name
// is not a domain name.
func canonical(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	name = dns.Fqdn(name)
	var buf [256]byte
	n, err := dns.PackDomainName(name, buf[:], 0, nil, false)
	if err != nil {
		return "", false
	}
	wire := buf[:n]
	for i := 0; i < len(wire) && wire[i] != 0; i += int(wire[i]) + 1 {
		lab := wire[i+1 : i+1+int(wire[i])]
		for j, c := range lab {
			if 'A' <= c && c <= 'Z' {
				lab[j] = c + 'a' - 'A'
			}
		}
	}
	s, _, err := dns.UnpackDomainName(wire, 0)
	if err != nil {
		return "", false
	}
	return s, true
}

// appendCanonical appends the presentation form of wire, an uncompressed
// wire-format name, lowercased and escaped as canonical (and miekg/dns's
// UnpackDomainName) writes it. ok is false when wire is not one whole
// name.
func appendCanonical(dst, wire []byte) (out []byte, ok bool) {
	start := len(dst)
	for i := 0; i < len(wire); {
		l := int(wire[i])
		if l == 0 {
			if len(dst) == start {
				dst = append(dst, '.')
			}
			return dst, i+1 == len(wire)
		}
		if l&0xC0 != 0 || i+1+l > len(wire) {
			return dst, false
		}
		for _, c := range wire[i+1 : i+1+l] {
			switch {
			case 'A' <= c && c <= 'Z':
				dst = append(dst, c+'a'-'A')
			case c == '.' || c == ' ' || c == '\'' || c == '@' || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < ' ' || c > '~':
				dst = append(dst, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
			default:
				dst = append(dst, c)
			}
		}
		dst = append(dst, '.')
		i += 1 + l
	}
	return dst, false
}

// plainCanonical is canonical for the names zone files nearly always
// hold: absolute, of letters, digits and other characters that need no
// escape. It writes the lowercase name into buf and reports false for any
// other name (canonical then decides).
func plainCanonical(buf *[maxName]byte, name string) ([]byte, bool) {
	n := len(name)
	if n == 0 || n > 254 || name[n-1] != '.' {
		return nil, false
	}
	if n == 1 {
		buf[0] = '.'
		return buf[:1], true
	}
	label := 0
	for i := 0; i < n; i++ {
		c := name[i]
		switch {
		case c == '.':
			if label == 0 || label > 63 {
				return nil, false
			}
			label = 0
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
			label++
		case c <= ' ' || c > '~' || c == '\'' || c == '@' || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\':
			return nil, false
		default:
			label++
		}
		buf[i] = c
	}
	return buf[:n], true
}

// appendSortKey appends sortKey(name) to dst without allocating (for
// names without escapes).
func appendSortKey(dst []byte, name string) []byte {
	if strings.IndexByte(name, '\\') < 0 {
		// No escapes: the labels are the text between dots, and no byte
		// of theirs is 0 or 1.
		end := len(name) - 1 // the final dot
		for end > 0 {
			start := strings.LastIndexByte(name[:end], '.') + 1
			dst = append(dst, name[start:end]...)
			dst = append(dst, 0)
			end = start - 1
		}
		return dst
	}
	var buf [256]byte
	n, err := dns.PackDomainName(name, buf[:], 0, nil, false)
	if err != nil {
		return append(dst, name...)
	}
	var labels [128]int
	k := 0
	for i := 0; i < n && buf[i] != 0; i += int(buf[i]) + 1 {
		labels[k] = i
		k++
	}
	for j := k - 1; j >= 0; j-- {
		i := labels[j]
		for _, c := range buf[i+1 : i+1+int(buf[i])] {
			if c <= 1 {
				dst = append(dst, 1)
			}
			dst = append(dst, c)
		}
		dst = append(dst, 0)
	}
	return dst
}

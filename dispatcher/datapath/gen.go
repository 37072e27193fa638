package datapath

// The BPF objects and their Go bindings are generated and committed, so that
// building Tern needs no clang. Rebuild them with dispatcher/generate.sh
// (Debian's clang 14 and libbpf-dev).

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -strip llvm-strip -target bpfel -type svc_key -type svc_val -type backend -type dp_config -type counter -type tcp_counter lb bpf/lb.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -strip llvm-strip -target bpfel decap bpf/decap.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu

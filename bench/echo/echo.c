/* echo: the kernel floor of `make bench`. One blocking UDP socket with
 * tern's socket options (SO_REUSEPORT, SO_RCVBUF 4 MiB, SO_RCVTIMEO 1 s),
 * read with recvmmsg (MSG_WAITFORONE, 16 at a time) and answered with
 * sendmmsg: each query goes back as its own answer (QR set, no records),
 * so dnsperf counts it. No parsing, no lookup: what is left is what the
 * kernel and the loop cost per packet.
 *
 *   echo 127.0.0.1 5360 [threads]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BATCH 16
#define QMAX 4096

static struct sockaddr_in bind_addr;

static void *serve(void *arg) {
	(void)arg;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int one = 1, rcv = 4 << 20;
	struct timeval tv = {1, 0};
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
	    bind(fd, (struct sockaddr *)&bind_addr, sizeof bind_addr)) {
		perror("echo: socket");
		exit(1);
	}
	/* ECHO_BUSY_POLL=usec: busy-poll this socket's blocking reads
	 * (SO_BUSY_POLL), to weigh busy-polling on the server side alone. */
	const char *bp = getenv("ECHO_BUSY_POLL");
	int usec = bp ? atoi(bp) : 0;
	if (usec > 0 && setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &usec, sizeof usec)) {
		perror("echo: SO_BUSY_POLL");
		exit(1);
	}
	static __thread char buf[BATCH][QMAX];
	struct mmsghdr in[BATCH], out[BATCH];
	struct iovec iov[BATCH], oiov[BATCH];
	struct sockaddr_in from[BATCH];
	for (;;) {
		memset(in, 0, sizeof in);
		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = QMAX;
			in[i].msg_hdr.msg_iov = &iov[i];
			in[i].msg_hdr.msg_iovlen = 1;
			in[i].msg_hdr.msg_name = &from[i];
			in[i].msg_hdr.msg_namelen = sizeof from[i];
		}
		int n = recvmmsg(fd, in, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;
		int k = 0;
		for (int i = 0; i < n; i++) {
			unsigned len = in[i].msg_len;
			if (len < 12)
				continue;
			buf[i][2] |= 0x84; /* QR, AA */
			memset(&out[k], 0, sizeof out[k]);
			oiov[k].iov_base = buf[i];
			oiov[k].iov_len = len;
			out[k].msg_hdr.msg_iov = &oiov[k];
			out[k].msg_hdr.msg_iovlen = 1;
			out[k].msg_hdr.msg_name = &from[i];
			out[k].msg_hdr.msg_namelen = in[i].msg_hdr.msg_namelen;
			k++;
		}
		for (int sent = 0; sent < k;) {
			int m = sendmmsg(fd, out + sent, k - sent, MSG_DONTWAIT);
			sent += m > 0 ? m : 1;
		}
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: echo ADDR PORT [threads]\n");
		return 2;
	}
	bind_addr.sin_family = AF_INET;
	bind_addr.sin_port = htons(atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &bind_addr.sin_addr) != 1) {
		fprintf(stderr, "echo: bad address %s\n", argv[1]);
		return 2;
	}
	int threads = argc > 3 ? atoi(argv[3]) : 1;
	pthread_t t;
	for (int i = 1; i < threads; i++)
		pthread_create(&t, NULL, serve, NULL);
	serve(NULL);
	return 0;
}

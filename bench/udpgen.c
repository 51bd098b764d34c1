/*
 * udpgen: send UDP datagrams as fast as one core can, with sendmmsg(2), so that the
 * forwarding path under test is the bottleneck, not the generator (bench/dataplane.py
 * builds it with `cc -O2`).
 *
 *     udpgen DST_IP PORT PAYLOAD_BYTES SECONDS [BATCH]
 *
 * Prints "<datagrams sent> <seconds>" on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 256

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static struct mmsghdr msgs[MAX_BATCH];
	static struct iovec iov[MAX_BATCH];
	static char payload[65536];
	struct sockaddr_in dst = {.sin_family = AF_INET};
	unsigned long long sent = 0;
	int fd, size, batch = 64, sndbuf = 8 << 20;
	double secs, t0, end;

	if (argc < 5) {
		fprintf(stderr, "usage: %s DST_IP PORT PAYLOAD_BYTES SECONDS [BATCH]\n", argv[0]);
		return 2;
	}
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[1]);
		return 2;
	}
	dst.sin_port = htons(atoi(argv[2]));
	size = atoi(argv[3]);
	secs = atof(argv[4]);
	if (argc > 5)
		batch = atoi(argv[5]);
	if (size < 0 || size > (int)sizeof(payload) || batch < 1 || batch > MAX_BATCH) {
		fprintf(stderr, "bad size or batch\n");
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		perror("socket/connect");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (int i = 0; i < batch; i++) {
		iov[i].iov_base = payload;
		iov[i].iov_len = size;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	t0 = now();
	end = t0 + secs;
	while (now() < end) {
		for (int k = 0; k < 16; k++) {
			int n = sendmmsg(fd, msgs, batch, 0);

			if (n > 0)
				sent += n;
		}
	}
	printf("%llu %.6f\n", sent, now() - t0);
	return 0;
}

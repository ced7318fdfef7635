// SPDX-License-Identifier: GPL-2.0
/*
 * udp-pingpong: exact UDP round trips for insncount's net windows.
 *   udp-pingpong server PORT            echo every datagram back, forever
 *   udp-pingpong client ADDR PORT N LEN  N round trips of LEN bytes, one in flight
 * A lost datagram is sent again after 200 ms (the hub does not lose them; the
 * retries are printed so that a run with any is visible). Exit status 0 when
 * all N came back. gcc -static -O2 -o udp-pingpong udp-pingpong.c
 */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	char buf[65536];
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	if (s < 0) {
		perror("socket");
		return 1;
	}
	if (argc == 3 && !strcmp(argv[1], "server")) {
		a.sin_port = htons(atoi(argv[2]));
		if (bind(s, (struct sockaddr *)&a, sizeof(a))) {
			perror("bind");
			return 1;
		}
		for (;;) {
			struct sockaddr_in p;
			socklen_t pl = sizeof(p);
			ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&p, &pl);

			if (n >= 0)
				sendto(s, buf, n, 0, (struct sockaddr *)&p, pl);
		}
	}
	if (argc == 6 && !strcmp(argv[1], "client")) {
		long n = atol(argv[4]), len = atol(argv[5]), retries = 0;
		struct pollfd pfd = { .fd = s, .events = POLLIN };

		if (len < 1 || len > (long)sizeof(buf) || inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) {
			fprintf(stderr, "udp-pingpong: bad arguments\n");
			return 2;
		}
		a.sin_port = htons(atoi(argv[3]));
		if (connect(s, (struct sockaddr *)&a, sizeof(a))) {
			perror("connect");
			return 1;
		}
		memset(buf, 0x5a, len);
		for (long i = 0; i < n; i++) {
			for (;;) {
				if (send(s, buf, len, 0) != len) {
					perror("send");
					return 1;
				}
				if (poll(&pfd, 1, 200) == 1 && recv(s, buf, sizeof(buf), 0) == len)
					break;
				if (++retries > 100) {
					fprintf(stderr, "udp-pingpong: no answer\n");
					return 1;
				}
			}
		}
		printf("udp-pingpong: %ld round trips, %ld retries\n", n, retries);
		return 0;
	}
	fprintf(stderr, "usage: udp-pingpong server PORT | client ADDR PORT N LEN\n");
	return 2;
}

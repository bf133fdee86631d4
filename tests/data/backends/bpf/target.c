/* A test binary for the BPF engine's uprobe and USDT tests (built with gcc -g
 * during the test).  add3() and classify() are the probed functions; the
 * stap_ls_test:tick SDT marker fires once per iteration. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>

__attribute__((noinline)) long add3(long a, long b, long c)
{
	return a + b * 2 + c * 3;
}

__attribute__((noinline)) int classify(int x)
{
	return x % 7;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 5;
	long total = 0;
	for (int i = 1; i <= n; i++) {
		total += add3(i, i * 10, -i);
		total += classify(i * 3);
		STAP_PROBE2(stap_ls_test, tick, i, total);
	}
	printf("%ld\n", total);
	return 0;
}

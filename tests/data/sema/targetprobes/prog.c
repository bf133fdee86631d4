/* A test program for target probe points: built with gcc -g by the tests. */
#include <stdio.h>

struct pt {
	int x;
	int y;
	struct pt *next;
};

int add(int a, int b)
{
	int c = a + b;
	return c;
}

int walk(struct pt *p)
{
	return p->x;
}

void nothing(long n)
{
	(void)n;
}

int main(int argc, char **argv)
{
	struct pt p = {1, 2, 0};
	nothing(argc);
	printf("%d %s\n", add(argc, 2) + walk(&p), argv[0]);
	return 0;
}

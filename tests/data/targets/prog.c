/* Test program for the target model: every kind of type stap prints. */
#include <stddef.h>
#include <sys/sdt.h>

typedef unsigned long ulong_t;
typedef int (*callback_t)(int, const char *);

struct point { int x, y; };
union value { int i; float f; char bytes[4]; };
enum mode { MODE_A, MODE_B = 5 };
struct node {
	struct node *next;
	const char *name;
	struct point where;
	int weights[3];
	union value val;
	callback_t cb;
	struct { int inner_a; } anon_holder;
};
typedef struct node node_t;

static int sum_points(const struct point *pts, size_t n)
{
	int s = 0;
	for (size_t i = 0; i < n; i++)
		s += pts[i].x + pts[i].y;
	return s;
}

static inline __attribute__((always_inline)) int twice(int q)
{
	return q * 2;
}

int walk(node_t *head, char **names, ulong_t limit, unsigned char flag,
	 long long big, short small, double ratio, void *opaque,
	 const volatile int *cvi, enum mode m, int matrix[2][3])
{
	int count = 0;
	char label[8] = "walk";
	STAP_PROBE3(testprov, walking, count, flag, big);
	for (node_t *p = head; p && (ulong_t)count < limit; p = p->next)
		count += twice(p->where.x) + (names != NULL) + label[0];
	return count + small + (int)ratio + (opaque != NULL) + *cvi + m + matrix[0][0];
}

int use_union(union value *v, union value copy, int (*fn)(int), void (*done)(void))
{
	STAP_PROBE(testprov, union_seen);
	return v->i + copy.i + (fn ? fn(1) : 0) + (done != NULL);
}

static int ident(int a) { return a; }

int main(int argc, char **argv)
{
	struct point pts[2] = {{1, 2}, {3, 4}};
	node_t n = {0};
	union value v = {0};
	int cv = 1;
	int matrix[2][3] = {{0}};
	n.where.x = argc;
	return sum_points(pts, 2) + walk(&n, argv, 10, 1, 2, 3, 4.0, NULL, &cv, MODE_B, matrix)
		+ use_union(&v, v, ident, NULL);
}

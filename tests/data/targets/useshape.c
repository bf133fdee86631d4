/* Uses libshape.so through the PLT. */
#include <stdio.h>
struct shape;
double shape_area(const struct shape *s, int scale);
void shape_clear(struct shape *s, unsigned long long flags);
int main(int argc, char **argv)
{
	puts(argv[0]);
	if (argc > 5) {
		shape_clear(NULL, 0);
		return (int)shape_area(NULL, argc);
	}
	return 0;
}

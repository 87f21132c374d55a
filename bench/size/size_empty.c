/* Size probe: the same link without rtws, to subtract the C runtime. */
int main(void) { return 0; }

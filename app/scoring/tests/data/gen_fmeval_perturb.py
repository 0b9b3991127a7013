import os, sys, types, json
# The fmeval 1.0.3 package directory (an unpacked wheel: pip download fmeval==1.0.3 --no-deps).
FMEVAL = os.environ['FMEVAL_SRC']
# load fmeval's perturbation classes without its package imports
src = open(FMEVAL + '/transforms/semantic_perturbations.py').read()
src = src.replace('from fmeval.transforms.transform import Transform','class Transform:\n    def __init__(self,*a,**k): pass\n    def register_input_output_keys(self,*a): pass')
src = src.replace('from fmeval.transforms.util import validate_call','validate_call=lambda f: f')
src = src.replace('from fmeval.util import require','def require(c,m): assert c, m')
ns = {}
exec(compile(src,'sp','exec'), ns)
def make(kind):
    cls = {'butter_finger':ns['ButterFinger'],'random_upper_case':ns['RandomUppercase'],'whitespace_add_remove':ns['AddRemoveWhitespace']}[kind]
    return cls('x',[f'o{i}' for i in range(5)])
if __name__ == '__main__':
    t = "A quick brown fox jumps over the lazy dog 10 times."
    for k in ['butter_finger','random_upper_case','whitespace_add_remove']:
        print(k, make(k).perturb(t)[:2])

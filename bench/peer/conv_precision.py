# PyTorch peer of bench/scripts/bench-conv-precision.fsx: the same ResNet-18-shaped stack (here with its real block
# structure), float32 NCHW against bfloat16 autocast in channels-last, one thread, and the relative change of the pooled
# features. Run with Debian's PyTorch: /usr/bin/python3 bench/peer/conv_precision.py
import torch, time, torch.nn as nn
torch.set_num_threads(1)
def block(cin, cout, stride):
    class B(nn.Module):
        def __init__(s):
            super().__init__()
            s.c1=nn.Conv2d(cin,cout,3,stride,1,bias=True); s.c2=nn.Conv2d(cout,cout,3,1,1,bias=True)
            s.down = nn.Conv2d(cin,cout,1,stride,bias=True) if (stride!=1 or cin!=cout) else None
        def forward(s,x):
            y=torch.relu(s.c1(x)); y=s.c2(y)
            return torch.relu(y+(s.down(x) if s.down is not None else x))
    return B()
net=nn.Sequential(nn.Conv2d(3,64,7,2,3),nn.ReLU(),nn.MaxPool2d(3,2,1),
  block(64,64,1),block(64,64,1),block(64,128,2),block(128,128,1),block(128,256,2),block(256,256,1),block(256,512,2),block(512,512,1),nn.AdaptiveAvgPool2d(1)).eval()
x=torch.randn(8,3,224,224)
def t(f,n=3):
    f(); s=time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter()-s)/n/8*1000
with torch.no_grad():
    fp=lambda: net(x)
    nb=net.to(memory_format=torch.channels_last); xc=x.to(memory_format=torch.channels_last)
    for r in range(2):
        a=t(fp)
        with torch.autocast('cpu',dtype=torch.bfloat16):
            b=t(lambda: nb(xc))
        print(f"fp32 {a:.1f} ms/img, bf16 autocast channels_last {b:.1f} ms/img, ratio {a/b:.2f}")
    ref=net(x).flatten(1)
    with torch.autocast('cpu',dtype=torch.bfloat16):
        bf=nb(xc).float().flatten(1)
    print("rel diff of features", ((bf-ref).norm()/ref.norm()).item())

module DiffusionFunctional.Api.Tests.NativeLoadTests

open Expecto
open TorchSharp
open type TorchSharp.torch

[<Tests>]
let tests =
    testList "TorchSharp native library" [
        test "a tiny model trains on the CPU and its loss falls" {
            torch.manual_seed 0L |> ignore
            torch.set_num_threads 1
            let model = nn.Sequential(nn.Linear(4L, 16L), nn.Tanh(), nn.Linear(16L, 1L))
            let x = torch.randn(64L, 4L)
            let y = (x.sum(1L, true) * 0.5).sin()
            let optimizer = optim.Adam(model.parameters(), 0.01)
            let lossAt () =
                use _ = torch.no_grad()
                use l = nn.functional.mse_loss(model.forward(x), y)
                l.item<float32>()
            let first = lossAt ()
            for _ in 1 .. 200 do
                use scope = torch.NewDisposeScope()
                optimizer.zero_grad()
                let loss = nn.functional.mse_loss(model.forward(x), y)
                loss.backward()
                optimizer.step() |> ignore
            let last = lossAt ()
            Expect.isLessThan last (first * 0.5f) (sprintf "loss %g -> %g" first last)
        }
    ]

/// The training step's buffer-wide updates (Training/FlatParameters.cs, FlatAdamW.cs): parameters laid end to end keep
/// their values and module, backward fills the gradient buffer, a replaced gradient is caught, and the flat AdamW
/// computes exactly what TorchSharp's per-parameter AdamW computes, state included.
module DiffusionFunctional.Api.Tests.FlatUpdateTests

open System.IO
open Expecto
open TorchSharp
open TorchSharp.Modules
open DiffusionFunctional.Models
open DiffusionFunctional.Training
open DiffusionFunctional.Api.Tests.TestSupport

/// A tiny UNet with weights drawn from seed 3 (the same weights every call).
let private seededNet () =
    torch.random.manual_seed 3L |> ignore
    new UNet(tinyConfig)

/// A loss that reaches every parameter: the network's output on a fixed batch against a fixed target.
let private lossOf (net: UNet) (extra: Parameter) (step: int) : torch.Tensor =
    torch.random.manual_seed (100L + int64 step) |> ignore
    use x = torch.randn(4L, 1L, 8L, 8L)
    use t = torch.tensor([| 10L; 200L; 500L; 900L |])
    use target = torch.randn(4L, 1L, 8L, 8L)
    use output = net.forward(x, t)
    use difference = output - target
    (difference * difference).mean() + (extra * extra).sum()

let private values (net: UNet) = [ for p in net.parameters() -> floats p ]

[<Tests>]
let tests =
    testList "Flat updates" [
        test "laying parameters out keeps their values and objects; they and their gradients become views of the buffers" {
            oneThread ()
            use net = seededNet ()
            let before = values net
            let objects = net.parameters() |> Seq.toArray
            use flat = new FlatParameters(net.parameters(), withGradients = true)
            Expect.equal (values net) before "same values"
            Expect.isTrue (Seq.forall2 (fun a b -> obj.ReferenceEquals(a, b)) objects (net.parameters())) "same Parameter objects in the module"
            flat.EnsureAttached()
            use loss = lossOf net (new Parameter(torch.zeros(1L))) 0
            loss.backward()
            let gradients = [ for p in net.parameters() -> floats p.grad ]
            let fromBuffer = [ for i in 0 .. flat.Parameters.Count - 1 -> floats (flat.SliceOf(flat.Gradients, i)) ]
            Expect.equal fromBuffer gradients "backward filled the gradient buffer, in place"
            Expect.isGreaterThan (float (flat.Gradients.abs().sum().item<float32>())) 0.0 "and the gradients are not all zero"
            let double () =
                use _ = torch.no_grad ()
                use two = torch.tensor 2.0f
                flat.Values.mul_(two) |> ignore
            double ()
            Expect.equal (floats (Seq.head (net.parameters()))) (before.Head |> Array.map ((*) 2.0f)) "writing the buffer writes the parameters"
        }

        test "a gradient replaced instead of copied into is caught" {
            oneThread ()
            use net = seededNet ()
            use flat = new FlatParameters(net.parameters(), withGradients = true)
            let victim = net.parameters() |> Seq.item 3
            victim.grad <- torch.zeros_like(victim)
            Expect.throwsT<System.InvalidOperationException> flat.EnsureAttached "a detached gradient is reported"
        }

        test "the flat AdamW computes exactly what TorchSharp's AdamW computes, moments and step counts included" {
            oneThread ()
            // The same network, weights and losses twice; a second group with its own rate and decay as a weighting's.
            use reference = seededNet ()
            use flatNet = seededNet ()
            let extraReference, extraFlat = new Parameter(torch.full(3L, 0.5f)), new Parameter(torch.full(3L, 0.5f))
            let groups (net: UNet) (extra: Parameter) =
                [ AdamW.ParamGroup(net.parameters(), lr = 3e-3, weight_decay = 0.01)
                  AdamW.ParamGroup([ extra ], lr = 0.1, weight_decay = 0.0) ]
            use adam = torch.optim.AdamW(groups reference extraReference, lr = 3e-3, weight_decay = 0.01)
            use layout = new FlatParameters(flatNet.parameters(), withGradients = true)
            use flatAdam = new FlatAdamW(layout, 3e-3, 0.01, [ AdamW.ParamGroup([ extraFlat ], lr = 0.1, weight_decay = 0.0) ])
            for step in 1 .. 4 do
                adam.zero_grad()
                (lossOf reference extraReference step).backward()
                adam.step() |> ignore
                flatAdam.ZeroGrad()
                (lossOf flatNet extraFlat step).backward()
                flatAdam.Step()
            Expect.equal (values flatNet) (values reference) "the same weights to the bit"
            Expect.equal (floats extraFlat) (floats extraReference) "the weighting's group too"
            let saved (optimizer: AdamW) =
                use memory = new MemoryStream()
                using (new BinaryWriter(memory)) (fun writer -> optimizer.save_state_dict writer)
                memory.ToArray()
            Expect.equal (saved flatAdam.Optimizer) (saved adam) "the same optimiser state, byte for byte (checkpoints unchanged)"
        }
    ]
